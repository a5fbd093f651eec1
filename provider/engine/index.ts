/**
 * One host, one SSH connection: read the facts, plan with the pure core, run the core's scripts,
 * and turn what the host answered into typed errors. Shared by the Pulumi provider and the CLI.
 */
import { createHash } from "node:crypto";
import { hostname, userInfo } from "node:os";
import { factsScript, parseFacts } from "../core/facts";
import { compatHelperInstalled, planHost, planRemoval } from "../core/plan";
import { runningNetwork } from "../core/running";
import { applyScript, parseApplyOutcome, remoteShellCommand, rollbackScript } from "../core/scripts";
import type { HostFacts, HostPlan, NetworkSpec, VerificationResult } from "../core/types";
import { parseVerification, verifyScript } from "../core/verify";
import { CapabilityError } from "../errors/capability-error";
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
    const { facts: before, plan, changed } = await planAndRun(session, spec, opts, "apply", (facts) => {
      const plan = planHost(spec, facts);
      assertCapable(session.label, plan);
      return plan;
    });
    const warnings = capabilityWarnings(plan);
    warnings.forEach((warning) => opts.onWarning?.(`${session.label}: ${warning}`));
    const after = changed ? await gatherFacts(session, spec) : before;
    // A required verification that cannot even run must not leave the new settings in place either.
    const rollBackIfRequired = async () => {
      if (changed && spec.verify.required) await rollBack(session, spec, plan);
    };
    const verification = spec.verify.enabled ? await verifyOn(session, spec, after).catch(async (error: unknown) => {
      await rollBackIfRequired();
      throw error;
    }) : null;

    if (verification && !verification.reachable && spec.verify.required) {
      await rollBackIfRequired();
      throw new VerificationError(
        `IPv6 is not reachable (${verification.diagnosis}: ${verification.detail})` +
          (changed ? `; the previous files were restored${plan.restart ? " and the daemon restarted on them" : ""}` : ""),
        verificationHint(verification, spec.verify.image),
        { host: session.label, step: "verify", evidence: describeVerification(verification) },
      );
    }
    return {
      host: session.label,
      plan,
      wrote: changed && plan.writes.length > 0,
      restarted: changed && plan.restart,
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
    const { facts, plan, changed } = await planAndRun(session, spec, opts, "delete", (facts) => planRemoval(spec, facts));
    const dropInWrite = plan.writes.find((write) => write.path === facts.dropIn.path);
    return {
      host: session.label,
      removedFile: changed && dropInWrite !== undefined && dropInWrite.content === null,
      restarted: changed && plan.restart,
    };
  });
}

export async function verifyHost(spec: NetworkSpec, opts: EngineOptions = {}): Promise<VerificationResult> {
  return withSession(spec, opts, async (session) => verifyOn(session, spec, await gatherFacts(session, spec)));
}

async function withSession<T>(spec: NetworkSpec, opts: EngineOptions, work: (session: SshSession) => Promise<T>): Promise<T> {
  const session = await openSession(spec.connection, { onWarning: opts.onWarning });
  try {
    return await work(session);
  } finally {
    session.close();
  }
}

async function gatherFacts(session: SshSession, spec: NetworkSpec): Promise<HostFacts> {
  const params = { unit: spec.unit, dropInName: spec.dropInName, ...(usesProbeImage(spec) ? { probeImage: spec.verify.image } : {}) };
  const result = await session.exec(remoteShellCommand(factsScript(params)));
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

/** Capability errors stop everything (apply, and `pulumi preview` through diff) before a byte is written. */
export function assertCapable(host: string, plan: HostPlan): void {
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
): Promise<{ facts: HostFacts; plan: HostPlan; changed: boolean }> {
  for (let attempt = 1; ; attempt++) {
    const facts = await gatherFacts(session, spec);
    const plan = planFor(facts);
    const outcome = await runPlan(session, spec, facts, plan, opts, step, attempt === PLAN_ATTEMPTS);
    if (outcome !== "stale") return { facts, plan, changed: outcome === "done" };
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
): Promise<"nothing-to-do" | "done" | "stale"> {
  if (plan.writes.length === 0 && !plan.daemonReload && !plan.restart) return "nothing-to-do";
  const currentContent = new Map<string, string | null>([
    [facts.dropIn.path, facts.dropIn.content],
    [facts.daemonJson.path, facts.daemonJson.content],
    [facts.compatScript.path, facts.compatScript.content],
  ]);
  const script = applyScript({
    unit: spec.unit,
    lockWaitSeconds: opts.lockWaitSeconds ?? DEFAULT_LOCK_WAIT_SECONDS,
    lockHolder: opts.lockHolder ?? defaultLockHolder(),
    backupDir: backupDir(spec),
    writes: plan.writes,
    expectedSha256: Object.fromEntries(plan.writes.map((write) => [write.path, sha256OrNull(currentContent.get(write.path) ?? null)])),
    daemonReload: plan.daemonReload,
    restart: plan.restart,
    activeTimeoutSeconds: ACTIVE_TIMEOUT_SECONDS,
  });
  const result = await session.exec(remoteShellCommand(script));
  const outcome = parseApplyOutcome(result.stdout, result.exitCode ?? -1);
  const details = { host: session.label, step, command: `sh (${step} script for ${spec.unit})`, exitCode: result.exitCode ?? undefined };
  switch (outcome.result) {
    case "applied":
    case "unchanged":
      return "done";
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
      throw new RemoteCommandError(
        `${step} failed at ${outcome.failedStep ?? "an unknown step"}: ${outcome.detail}`,
        outcome.result === "rollback-failed"
          ? `the rollback failed too: inspect the host by hand (backups in ${backupDir(spec)})`
          : "read the evidence below; the host's previous files are kept in the backup directory",
        { ...details, evidence: [...result.stderr.split("\n"), ...outcome.journal] },
      );
  }
}

/** Restores the files of the apply being undone; restarts only when it restarted (`restart: "never"` stays honoured). */
async function rollBack(session: SshSession, spec: NetworkSpec, plan: HostPlan): Promise<void> {
  const script = rollbackScript({
    unit: spec.unit,
    lockWaitSeconds: DEFAULT_LOCK_WAIT_SECONDS,
    lockHolder: defaultLockHolder(),
    backupDir: backupDir(spec),
    activeTimeoutSeconds: ACTIVE_TIMEOUT_SECONDS,
    restart: plan.restart,
    expectedSha256: Object.fromEntries(plan.writes.map((write) => [write.path, sha256OrNull(write.content)])),
  });
  const result = await session.exec(remoteShellCommand(script));
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
  const script = verifyScript(spec.verify, { container: spec.containerIpv6 !== undefined, unit: spec.unit });
  // Each path (namespace, then the container) retries up to timeoutSeconds, and a last attempt may start just
  // before that deadline and probe every target once more (up to ~10 s each).
  const paths = spec.containerIpv6 !== undefined ? 2 : 1;
  const timeoutMs = (paths * (spec.verify.timeoutSeconds + 10 * spec.verify.targets.length) + 60) * 1000;
  const result = await session.exec(remoteShellCommand(script), { timeoutMs });
  return parseVerification(result.stdout, { pingGroupRange: facts.pingGroupRange });
}

/** The verification runs a bridge container only when daemon.json is managed. */
const usesProbeImage = (spec: NetworkSpec) => spec.verify.enabled && spec.containerIpv6 !== undefined;

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
