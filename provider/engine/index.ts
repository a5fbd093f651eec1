/**
 * One host, one SSH connection: read the facts, plan with the pure core, run the core's scripts,
 * and turn what the host answered into typed errors. Shared by the Pulumi provider and the CLI.
 */
import { createHash } from "node:crypto";
import { hostname, userInfo } from "node:os";
import { factsScript, parseFacts } from "../core/facts";
import { compatHelperInstalled, planHost, planRemoval, targetProblems } from "../core/plan";
import { runningNetwork } from "../core/in-effect";
import { applyScript, parseApplyOutcome, remoteShellCommand, rollbackScript } from "../core/scripts";
import type { HostFacts, HostPlan, NetworkSpec, VerificationResult } from "../core/types";
import { parseVerification, unfinishedVerification, verificationCoverage, verifyScript } from "../core/verify";
import { convergenceGaps, describeGap } from "../core/converged";
import { CapabilityError } from "../errors/capability-error";
import { isConnectionError } from "../errors/connection-error";
import { ConvergenceError } from "../errors/convergence-error";
import { isRemoteTimeoutError } from "../errors/remote-timeout-error";
import { LockTimeoutError } from "../errors/lock-timeout-error";
import { RemoteCommandError } from "../errors/remote-command-error";
import { RollbackError } from "../errors/rollback-error";
import { VerificationError } from "../errors/verification-error";
import { hostLabel, openSession, type SshSession } from "../transport";
import { probeImageHint } from "../core/plan";
import type { ApplyResult, EngineOptions, InspectResult, RemoveResult } from "./types";

export type * from "./types";

/** Long enough for dockerd to start on a slow host, short enough that a broken unit fails the apply. */
const ACTIVE_TIMEOUT_SECONDS = 90;
const DEFAULT_LOCK_WAIT_SECONDS = 120;
/**
 * Outside `UNIT.d/`, where a backed-up `.conf` would be loaded by systemd; one folder per unit and drop-in, so that
 * resources managing different drop-ins of the same login never overwrite each other's backups.
 */
const backupDir = (spec: NetworkSpec) => `~/.local/state/pulumi-rootless-docker/backup/${spec.unit}/${spec.dropInName}`;

export async function inspectHost(spec: NetworkSpec, opts: EngineOptions = {}): Promise<InspectResult> {
  return withSession(spec, opts, async (session) => {
    const facts = await gatherFacts(session, spec);
    return { host: session.label, facts, plan: planHost(spec, facts), running: runningNetwork(facts), dropInSha256: sha256OrNull(facts.dropIn.content) };
  });
}

export async function applyHost(spec: NetworkSpec, opts: EngineOptions = {}): Promise<ApplyResult> {
  return withSession(spec, opts, async (session) => {
    const { plan, changed, after } = await planAndRun(session, spec, opts, "apply", (facts) => {
      const plan = planHost(spec, facts);
      assertCapable(session.label, plan);
      return plan;
    });
    const warnings = capabilityWarnings(plan);
    warnings.forEach((warning) => opts.onWarning?.(`${session.label}: ${warning}`));
    const wrote = changed && plan.writes.length > 0;
    const restarted = changed && plan.restart;
    // Every apply proves itself: the script read the host again before releasing the lock; plan again on that.
    const postPlan = changed ? planHost(spec, after) : plan;
    // A required verification that cannot even run must not leave the new settings in place either.
    const rollBackIfRequired = async () => {
      if (wrote && spec.verify.required) await rollBack(session, spec, plan);
    };
    const gaps = convergenceGaps(spec, postPlan, { restarted });
    if (gaps.length > 0) {
      await rollBackIfRequired();
      const done = !changed ? "nothing was written or restarted" : `${wrote ? "our files were written" : "nothing was written"}${restarted ? " and the daemon restarted" : ""}`;
      const restored = wrote && spec.verify.required ? "; the previous files were restored (verify.required)" : "";
      throw new ConvergenceError(
        `${gaps.length} declared setting${gaps.length === 1 ? "" : "s"} did not take effect (${gaps.map((gap) => gap.input ?? gap.property).join(", ")}): ${done}${restored}`,
        "the evidence names each setting, what is in effect and the source that decides it: change or remove that source (or declare what it sets), then apply again",
        { host: session.label, step: "check after apply", evidence: gaps.map(describeGap) },
      );
    }
    const verification = spec.verify.enabled ? await verifyOn(session, spec, after).catch(async (error: unknown) => {
      // Not required: a check that could not finish is reported as unreachable, never a failed apply after a good change.
      if (!spec.verify.required && (isRemoteTimeoutError(error) || isConnectionError(error))) {
        return unfinishedVerification(error.message.split("\n")[0]!, verificationCoverage(spec), new Date().toISOString().replace(/\.\d{3}Z$/, "Z"));
      }
      await rollBackIfRequired();
      throw error;
    }) : null;

    if (verification && !verification.reachable && spec.verify.required) {
      await rollBackIfRequired();
      throw new VerificationError(
        `IPv6 is not reachable (${verification.diagnosis}: ${verification.detail})` +
          (wrote ? `; the previous files were restored${plan.restart ? " and the daemon restarted on them" : ""}` : ""),
        verificationHint(verification, spec.verify.image),
        { host: session.label, step: "verify", evidence: describeVerification(verification) },
      );
    }
    return {
      host: session.label,
      plan,
      postPlan,
      wrote,
      restarted,
      facts: after,
      running: runningNetwork(after),
      dropInSha256: sha256OrNull(after.dropIn.content),
      compatInUse: compatHelperInstalled(after),
      warnings,
      verification,
    };
  });
}

export async function removeHost(spec: NetworkSpec, opts: EngineOptions = {}): Promise<RemoveResult> {
  return withSession(spec, opts, async (session) => {
    const { facts, plan, changed, after } = await planAndRun(session, spec, opts, "delete", (facts) => planRemoval(spec, facts));
    const dropInWrite = plan.writes.find((write) => write.path === facts.dropIn.path);
    const restarted = changed && plan.restart;
    // A delete proves itself too: nothing of ours may be left in the files.
    const postPlan = changed ? planRemoval(spec, after) : plan;
    const gaps = convergenceGaps(spec, postPlan, { restarted });
    if (gaps.length > 0) {
      throw new ConvergenceError(
        `the delete did not take effect: ${gaps.map((gap) => gap.input ?? gap.property).join(", ")} still set`,
        "the evidence names what is left and where; remove it by hand or run the delete again",
        { host: session.label, step: "check after delete", evidence: gaps.map(describeGap) },
      );
    }
    return {
      host: session.label,
      removedFile: changed && dropInWrite !== undefined && dropInWrite.content === null,
      restarted,
      postPlan,
    };
  });
}

export async function verifyHost(spec: NetworkSpec, opts: EngineOptions = {}): Promise<VerificationResult> {
  return withSession(spec, opts, async (session) => {
    const facts = await gatherFacts(session, spec);
    // A target that proves nothing on this host is refused here as in the plan, judged by what runs now.
    const running = runningNetwork(facts);
    assertCapable(session.label, { problems: targetProblems(spec, facts, running.networkDriver === "pasta" && !running.disableHostLoopback) });
    return verifyOn(session, spec, facts);
  });
}

async function withSession<T>(spec: NetworkSpec, opts: EngineOptions, work: (session: SshSession) => Promise<T>): Promise<T> {
  const session = await openSession(spec.connection, { onWarning: opts.onWarning });
  try {
    return await work(session);
  } finally {
    session.close();
  }
}

const factsParams = (spec: NetworkSpec) => ({ unit: spec.unit, dropInName: spec.dropInName, ...(usesProbeImage(spec) ? { probeImage: spec.verify.image } : {}) });

/** The facts the apply script read again under the lock: without them the apply cannot prove itself, so it fails. */
function factsAfterApply(host: string, spec: NetworkSpec, step: string, stdout: string | undefined): HostFacts {
  try {
    if (stdout === undefined) throw new Error("the script printed no facts");
    return parseFacts(stdout, factsParams(spec));
  } catch (error) {
    throw new RemoteCommandError(`the ${step} ran, but reading the host again afterwards failed, so it cannot be shown to have taken effect`, "run a plan to see what the host has now, then apply again", {
      host,
      step: `check after ${step}`,
      evidence: [(error as Error).message],
      cause: error,
    });
  }
}

async function gatherFacts(session: SshSession, spec: NetworkSpec): Promise<HostFacts> {
  const params = factsParams(spec);
  const result = await session.exec(remoteShellCommand(factsScriptFor(spec)), {
    step: "gather facts",
    timeoutMs: spec.timeouts.factsSeconds * 1000,
    timeoutHint: `raise timeouts.factsSeconds (now ${spec.timeouts.factsSeconds})`,
  });
  if (result.exitCode !== 0) {
    throw new RemoteCommandError("reading the host's state failed", "check that the user has a POSIX login shell and a home directory", {
      host: session.label,
      step: "gather facts",
      command: "sh (facts script)",
      exitCode: result.exitCode ?? undefined,
      evidence: result.stderr.split("\n"),
    });
  }
  try {
    return parseFacts(result.stdout, params);
  } catch (error) {
    throw new RemoteCommandError("the host's answer could not be read (cut off or altered)", "run again; if it persists, run the facts script by hand and report its output", {
      host: session.label,
      step: "gather facts",
      command: "sh (facts script)",
      exitCode: result.exitCode ?? undefined,
      evidence: [(error as Error).message, ...result.stderr.split("\n")],
      cause: error,
    });
  }
}

/**
 * The waits inside an apply or rollback script fitted into `timeouts.applySeconds`: the lock wait, the wait for the
 * daemon after a restart and again after a rollback restart, with room left, so the script ends before its exec does.
 */
function scriptBudget(spec: NetworkSpec, opts: EngineOptions): { lockWaitSeconds: number; activeTimeoutSeconds: number; exec: { timeoutMs: number; timeoutHint: string } } {
  const total = spec.timeouts.applySeconds;
  const activeTimeoutSeconds = Math.min(ACTIVE_TIMEOUT_SECONDS, Math.floor(total / 4));
  const lockWaitSeconds = Math.max(0, Math.min(opts.lockWaitSeconds ?? DEFAULT_LOCK_WAIT_SECONDS, total - 2 * activeTimeoutSeconds - 15));
  return { lockWaitSeconds, activeTimeoutSeconds, exec: { timeoutMs: total * 1000, timeoutHint: `raise timeouts.applySeconds (now ${total}); the script ignores the lost connection and holds the host lock until it ends` } };
}

/** Capability errors stop everything (apply, and `pulumi preview` through diff) before a byte is written. */
export function assertCapable(host: string, plan: Pick<HostPlan, "problems">): void {
  const errors = plan.problems.filter((problem) => problem.severity === "error");
  if (errors.length === 0) return;
  throw new CapabilityError(errors.map((problem) => problem.message).join("; "), errors.map((problem) => problem.hint).join("; "), {
    host,
    step: "check capabilities",
  });
}

export function capabilityWarnings(plan: HostPlan): string[] {
  return plan.problems.filter((problem) => problem.severity === "warning").map((problem) => `${problem.message} (${problem.hint})`);
}

/** How often a plan made stale by another apply (which held the host lock meanwhile) is made again on what it left. */
const PLAN_ATTEMPTS = 3;

/**
 * Reads the facts, plans, and runs the plan under the host lock. When another apply changed a managed file between
 * our read and our turn at the lock, the compare-and-swap refuses our plan: plan again on what that apply left.
 */
async function planAndRun(
  session: SshSession,
  spec: NetworkSpec,
  opts: EngineOptions,
  step: "apply" | "delete",
  planFor: (facts: HostFacts) => HostPlan,
): Promise<{ facts: HostFacts; plan: HostPlan; changed: boolean; after: HostFacts }> {
  for (let attempt = 1; ; attempt++) {
    const facts = await gatherFacts(session, spec);
    const plan = planFor(facts);
    const outcome = await runPlan(session, spec, facts, plan, opts, step, attempt === PLAN_ATTEMPTS);
    if (outcome === "nothing-to-do") return { facts, plan, changed: false, after: facts };
    if (outcome !== "stale") return { facts, plan, changed: true, after: outcome.after };
  }
}

/** Runs the plan's writes, reload and restart as one locked remote script. */
async function runPlan(
  session: SshSession,
  spec: NetworkSpec,
  facts: HostFacts,
  plan: HostPlan,
  opts: EngineOptions,
  step: "apply" | "delete",
  lastAttempt: boolean,
): Promise<"nothing-to-do" | "stale" | { after: HostFacts }> {
  if (nothingToDo(plan)) return "nothing-to-do";
  const budget = scriptBudget(spec, opts);
  const script = applyScriptOf(spec, facts, plan, opts);
  const result = await session.exec(remoteShellCommand(script), { step, ...budget.exec });
  const outcome = parseApplyOutcome(result.stdout, result.exitCode ?? -1);
  const details = { host: session.label, step, command: `sh (${step} script for ${spec.unit})`, exitCode: result.exitCode ?? undefined };
  switch (outcome.result) {
    case "applied":
    case "unchanged":
      return { after: factsAfterApply(session.label, spec, step, outcome.factsAfter) };
    case "lock-timeout":
      throw new LockTimeoutError(
        `another apply holds the host lock: ${outcome.lockHolder ?? "unknown holder"}`,
        "wait for it to finish, or raise the lock wait; nothing was changed",
        details,
      );
    case "changed-since-plan":
      if (!lastAttempt) return "stale";
      throw new RemoteCommandError(
        `a managed file changed while we were planning, ${PLAN_ATTEMPTS} times in a row (${outcome.detail})`,
        "something else keeps editing the drop-in: stop it, then run again; nothing was changed by this apply",
        details,
      );
    case "rolled-back": {
      const restartedOnOld = outcome.steps.some((done) => done.name === "rollback-restart" && done.status === "ok");
      const failure = outcome.failedStep === "wait-active" ? "the daemon did not become active after the restart" : `the ${outcome.failedStep ?? "apply"} step failed`;
      throw new RollbackError(
        `${failure}; the previous files were restored${restartedOnOld ? " and the daemon restarted on them" : ""}`,
        "read the evidence below (`journalctl --user -u docker`), fix the cause, then apply again",
        { ...details, evidence: [...(outcome.detail ? [outcome.detail] : []), ...outcome.journal] },
      );
    }
    default:
      if (plan.writes.length === 0 && (outcome.failedStep === "restart" || outcome.failedStep === "wait-active")) {
        throw new RemoteCommandError(
          `the daemon did not come back after the restart (${outcome.detail}); nothing was written, so there was nothing to restore`,
          "read the evidence below (`journalctl --user -u docker`): the daemon fails on the files it already had",
          { ...details, evidence: outcome.journal },
        );
      }
      throw new RemoteCommandError(
        `${step} failed at ${outcome.failedStep ?? "an unknown step"}: ${outcome.detail}`,
        outcome.result === "rollback-failed"
          ? `the rollback failed too: inspect the host by hand (backups in ${backupDir(spec)})`
          : "read the evidence below; the host's previous files are kept in the backup directory",
        { ...details, evidence: [...result.stderr.split("\n"), ...outcome.journal] },
      );
  }
}

const nothingToDo = (plan: HostPlan) => plan.writes.length === 0 && !plan.daemonReload && !plan.restart;

/** The apply script for a plan made on these facts: what runPlan sends, and what `rootless-docker-net script apply` prints. */
function applyScriptOf(spec: NetworkSpec, facts: HostFacts, plan: HostPlan, opts: EngineOptions): string {
  const currentContent = new Map<string, string | null>([
    [facts.dropIn.path, facts.dropIn.content],
    [facts.daemonJson.path, facts.daemonJson.content],
    [facts.compatScript.path, facts.compatScript.content],
  ]);
  const budget = scriptBudget(spec, opts);
  return applyScript({
    unit: spec.unit,
    lockWaitSeconds: budget.lockWaitSeconds,
    lockHolder: opts.lockHolder ?? defaultLockHolder(),
    backupDir: backupDir(spec),
    writes: plan.writes,
    expectedSha256: Object.fromEntries(plan.writes.map((write) => [write.path, sha256OrNull(currentContent.get(write.path) ?? null)])),
    daemonReload: plan.daemonReload,
    restart: plan.restart,
    // Files are compared by checksum; an apply that writes nothing compares the daemon's invocation instead, so two
    // applies that both planned the same restart restart once (the second plans again on the first one's result).
    ...(plan.writes.length === 0 && plan.restart ? { expectedInvocationId: facts.unit.invocationId } : {}),
    factsScript: factsScriptFor(spec),
    activeTimeoutSeconds: budget.activeTimeoutSeconds,
  });
}

/** The facts script the engine runs for this spec (`rootless-docker-net script facts`). */
export function factsScriptFor(spec: NetworkSpec): string {
  return factsScript(factsParams(spec));
}

/** The verification script the engine runs for this spec (`rootless-docker-net script verify`). */
export function verifyScriptFor(spec: NetworkSpec): string {
  return verifyScript(spec.verify, { container: verificationCoverage(spec) === "namespace+container", unit: spec.unit });
}

/**
 * Reads the host and returns the apply script an apply would run now, or null when it would run none (in sync).
 * Refuses a host an apply refuses (capability errors), as the apply does, before any script.
 */
export async function applyScriptFor(spec: NetworkSpec, opts: EngineOptions = {}): Promise<{ host: string; plan: HostPlan; script: string | null }> {
  return withSession(spec, opts, async (session) => {
    const facts = await gatherFacts(session, spec);
    const plan = planHost(spec, facts);
    assertCapable(session.label, plan);
    return { host: session.label, plan, script: nothingToDo(plan) ? null : applyScriptOf(spec, facts, plan, opts) };
  });
}

/** Restores the files of the apply being undone; restarts only when it restarted (`restart: "never"` stays honoured). */
async function rollBack(session: SshSession, spec: NetworkSpec, plan: HostPlan): Promise<void> {
  const budget = scriptBudget(spec, {});
  const script = rollbackScript({
    unit: spec.unit,
    lockWaitSeconds: budget.lockWaitSeconds,
    lockHolder: defaultLockHolder(),
    backupDir: backupDir(spec),
    activeTimeoutSeconds: budget.activeTimeoutSeconds,
    restart: plan.restart,
    expectedSha256: Object.fromEntries(plan.writes.map((write) => [write.path, sha256OrNull(write.content)])),
  });
  const result = await session.exec(remoteShellCommand(script), { step: "rollback", ...budget.exec });
  const outcome = parseApplyOutcome(result.stdout, result.exitCode ?? -1);
  if (outcome.result === "changed-since-plan") {
    throw new RemoteCommandError(
      `verification failed, and another apply has written since ours (${outcome.detail}): its backups are not ours to restore`,
      "check what the other apply (or a person) set, then apply again",
      { host: session.label, step: "rollback", exitCode: result.exitCode ?? undefined },
    );
  }
  if (outcome.result !== "rolled-back") {
    throw new RemoteCommandError(`verification failed and the rollback failed too: ${outcome.detail}`, `inspect the host by hand (backups in ${backupDir(spec)})`, {
      host: session.label,
      step: "rollback",
      exitCode: result.exitCode ?? undefined,
      evidence: outcome.journal,
    });
  }
}

async function verifyOn(session: SshSession, spec: NetworkSpec, facts: HostFacts): Promise<VerificationResult> {
  const script = verifyScriptFor(spec);
  // Each path (namespace, then the container) retries up to timeoutSeconds, and a last attempt may start just
  // before that deadline and probe every target once more (up to ~10 s each).
  const paths = spec.containerIpv6 !== undefined ? 2 : 1;
  const seconds = spec.timeouts.verifySeconds ?? paths * (spec.verify.timeoutSeconds + 10 * spec.verify.targets.length) + 60;
  const result = await session.exec(remoteShellCommand(script), {
    step: "verify",
    timeoutMs: seconds * 1000,
    timeoutHint: `raise timeouts.verifySeconds (now ${seconds}${spec.timeouts.verifySeconds === undefined ? ", derived from verify.timeoutSeconds" : ""})`,
  });
  return parseVerification(result.stdout, { pingGroupRange: facts.pingGroupRange });
}

/** The verification runs a bridge container only when daemon.json is managed. */
const usesProbeImage = (spec: NetworkSpec) => spec.verify.enabled && verificationCoverage(spec) === "namespace+container";

function verificationHint(verification: VerificationResult, image: string): string {
  switch (verification.diagnosis) {
    case "probe-image-missing":
      return probeImageHint(image);
    case "no-global-ipv6-address":
      return "the RootlessKit namespace has no global IPv6 address: set ipv6: true; with pasta on RootlessKit < 2.3.0 set pastaIpv6Compat: true";
    case "no-default-route":
      return "the namespace has no IPv6 default route: with containerIpv6 dockerd enables forwarding and slirp4netns' router advertisements are ignored; use pasta, or pastaIpv6Compat";
    case "icmp-blocked-by-ping-group-range":
      return 'ICMP needs ping sockets on the host: sysctl -w net.ipv4.ping_group_range="0 2147483647" (TCP works meanwhile)';
    case "daemon-not-running":
      return "the daemon is not running: systemctl --user status docker; journalctl --user -u docker";
    default:
      return "the host itself must reach the target: check its IPv6 address and default route (ip -6 route)";
  }
}

function describeVerification(verification: VerificationResult): string[] {
  return verification.paths.flatMap((path) => [
    `${path.path}: ${path.diagnosis} (${path.detail}); addresses ${path.addresses.join(", ") || "none"}; default route ${path.defaultRoute ?? "none"}`,
    ...path.targets.map((target) => `  ${target.address}${target.tcpPort ? ` tcp/${target.tcpPort}` : ""}: icmp ${String(target.icmp)}, tcp ${String(target.tcp)}`),
  ]);
}

function sha256OrNull(content: string | null): string | null {
  return content === null ? null : createHash("sha256").update(content, "utf8").digest("hex");
}

function defaultLockHolder(): string {
  return `${userInfo().username}@${hostname()} pid ${process.pid} (pulumi-rootless-docker)`;
}

export { hostLabel };
