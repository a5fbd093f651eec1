/**
 * The CLI's three commands over the same engine the Pulumi provider uses (no second implementation):
 * each host is worked on in its own SSH session, in parallel up to a bound, and one failing host never
 * stops the others from being reported. Results are plain data; rendering is in render.ts.
 */
import { planActions, type PlanActions } from "../core/actions";
import type { RunningNetwork } from "../core/running";
import { inputOfProperty } from "../core/schema";
import type { CapabilityProblem, NetworkSpec, PropertyChange, VerificationResult } from "../core/types";
import { waveOutcome, type WaveOutcome } from "../core/waves";
import type { ApplyResult, EngineOptions, InspectResult } from "../engine/types";
import { isRootlessDockerError } from "../errors/base";
import type { ResolvedHost } from "./hosts";

/** The engine entry points the CLI needs (the real one is `provider/engine`). */
export interface Engine {
  inspectHost(spec: NetworkSpec, opts?: EngineOptions): Promise<InspectResult>;
  applyHost(spec: NetworkSpec, opts?: EngineOptions): Promise<ApplyResult>;
  verifyHost(spec: NetworkSpec, opts?: EngineOptions): Promise<VerificationResult>;
}

export interface RunOptions {
  engine: Engine;
  /** Hosts worked on at the same time. */
  concurrency: number;
  /** Called as each host starts and finishes and as each wave starts and ends, for progress. */
  onProgress?: (event: ProgressEvent) => void;
  /** plan: a unified diff of each file the apply would write (`plan --diff`). */
  diff?: boolean;
}

/** What is happening, as it happens. `done` counts the hosts finished so far out of `total`. */
export type ProgressEvent =
  | {
      /** Work on a host has started. */
      type: "host-start";
      /** The host's name in the hosts file. */
      name: string;
      /** What is being done there. */
      activity: "planning" | "applying" | "verifying";
      /** 1-based wave number (apply only). */
      wave?: number;
    }
  | {
      /** A host has finished. */
      type: "host-done";
      /** The host's name in the hosts file. */
      name: string;
      /** Its row's status (`in-sync`, `converged`, `reachable`, `error`, …). */
      status: string;
      /** Hosts finished so far, this one included. */
      done: number;
      /** Hosts in the run. */
      total: number;
      /** 1-based wave number (apply only). */
      wave?: number;
    }
  | {
      /** A wave of an apply has started. */
      type: "wave-start";
      /** 1-based wave number. */
      wave: number;
      /** How many waves there are. */
      waves: number;
      /** The names of the wave's hosts. */
      hosts: string[];
    }
  | {
      /** A wave of an apply has ended. */
      type: "wave-done";
      /** 1-based wave number. */
      wave: number;
      /** How many waves there are. */
      waves: number;
      /** How many of its hosts ended with each status. */
      statuses: Record<string, number>;
    };

/** An error as shown to people and machines: which host, which step, what failed, what to do, and the evidence. */
export interface ErrorSummary {
  /** The error's class, e.g. `ConnectionError`, `HostKeyError`, `CapabilityError`. */
  type: string;
  /** `user@host:port`, when the error concerns a connection; null otherwise. */
  host: string | null;
  /** The step that failed: `connect`, `gather facts`, `apply`, `verify`, … */
  step: string;
  /** What failed, in one sentence. */
  message: string;
  /** What to do about it. */
  fix: string;
  /** The remote stderr or journal lines that explain it (may be empty). */
  evidence: string[];
  /** The remote command that failed, when one did. */
  command?: string;
  /** The remote command's exit code, when one failed. */
  exitCode?: number;
}

export const EXIT = { ok: 0, error: 1, differs: 2 } as const;

// ---------------------------------------------------------------------------------------------
// plan

/** in-sync: nothing differs; differs: apply would change something; blocked: apply would refuse (capability errors); error: not planned. */
export type PlanStatus = "in-sync" | "differs" | "blocked" | "error";

/** One host's plan. */
export interface PlanRow {
  /** The host's name in the hosts file. */
  name: string;
  /** What an apply would find (see `PlanStatus`). */
  status: PlanStatus;
  /** `user@host:port`, once connected. */
  host?: string;
  /** Every setting that differs, at each level (file, effective, running). */
  changes: PlanChange[];
  /** Capability errors (which block the apply) and warnings. */
  problems: CapabilityProblem[];
  /** What the running RootlessKit has, read from its command line (absent when the host was not read). */
  running?: RunningNetwork;
  /** What an apply would do now: files, daemon-reload, restart, each with the reason (absent when the host was not read). */
  actions?: PlanActions;
  /** Warnings of this host (host key not checked, linger off, …), also in `problems` when they come from the plan. */
  warnings: string[];
  /** Why the host could not be planned (status `error`). */
  error?: ErrorSummary;
}

/** A plan row's change, with the input that declares it beside the variable (`networkDriver` for `DOCKERD_ROOTLESS_ROOTLESSKIT_NET`). */
export type PlanChange = PropertyChange & {
  /** The input that declares the property (`networkDriver`, `ipv6, extraFlags`); absent when none does or it is the property's own name. */
  input?: string;
};

export interface PlanReport {
  command: "plan";
  /** 0 nothing differs; 2 something differs; 1 a host could not be planned or cannot be converged (an unread host may hide drift). */
  exitCode: number;
  hosts: PlanRow[];
  /** The hosts by status, and those an apply would restart now (a blocked host is refused, so never restarted). */
  summary: {
    /** How many hosts were planned. */
    hosts: number;
    /** How many hosts have each status. */
    statuses: Record<string, number>;
    /** The names of the hosts an apply would restart. */
    restart: string[];
  };
}

/** The change with the input that declares it, when one does. */
export function withInput(change: PropertyChange): PlanChange {
  const input = inputOfProperty(change.property);
  return input === undefined || input === change.property ? change : { ...change, input };
}

export async function runPlan(hosts: readonly ResolvedHost[], options: RunOptions): Promise<PlanReport> {
  const finished = counter(hosts.length, options);
  const rows = await mapBounded(hosts, options.concurrency, async ({ name, spec, warnings: inputWarnings }): Promise<PlanRow> => {
    options.onProgress?.({ type: "host-start", name, activity: "planning" });
    const warnings = [...inputWarnings];
    try {
      const result = await options.engine.inspectHost(spec, { onWarning: (warning) => warnings.push(warning) });
      const blocked = result.plan.problems.some((problem) => problem.severity === "error");
      const status: PlanStatus = blocked ? "blocked" : result.plan.differs ? "differs" : "in-sync";
      const planWarnings = result.plan.problems.filter((problem) => problem.severity === "warning").map((problem) => `${problem.message} (${problem.hint})`);
      // A blocked host is refused before anything is written: it does nothing, whatever the plan would.
      const actions = blocked
        ? { unit: spec.unit, files: [], daemonReload: { will: false, reason: "the apply refuses this host (capability errors): nothing is written" }, restart: { will: false, reason: "the apply refuses this host (capability errors): no restart" } }
        : planActions(spec.unit, result.facts, result.plan, { diff: options.diff === true });
      finished(name, status);
      return { name, status, host: result.host, changes: result.plan.changes.map(withInput), problems: result.plan.problems, running: result.running, actions, warnings: unique([...warnings, ...planWarnings]) };
    } catch (error) {
      finished(name, "error");
      return { name, status: "error", changes: [], problems: [], warnings, error: summarize(error) };
    }
  });
  const exitCode = rows.some((row) => row.status === "error" || row.status === "blocked")
    ? EXIT.error
    : rows.some((row) => row.status === "differs")
      ? EXIT.differs
      : EXIT.ok;
  const summary = { hosts: rows.length, statuses: tally(rows.map((row) => row.status)), restart: rows.filter((row) => row.actions?.restart.will === true).map((row) => row.name) };
  return { command: "plan", exitCode, hosts: rows, summary };
}

// ---------------------------------------------------------------------------------------------
// apply

/** unreachable: applied, but verification (not required, so not rolled back) found IPv6 unreachable. */
export type ApplyStatus = "converged" | "unchanged" | "unreachable" | "failed" | "untouched";

/** One host's apply. */
export interface ApplyRow {
  /** The host's name in the hosts file. */
  name: string;
  /** 1-based wave number. */
  wave: number;
  /** `converged` (written or restarted), `unchanged`, `unreachable`, `failed`, or `untouched` (a later wave not started). */
  status: ApplyStatus;
  /** `user@host:port`, once connected. */
  host?: string;
  /** What the apply found differing, and changed. */
  changes: PlanChange[];
  /** The plan made again on the host after the apply (applied hosts only): nothing may be left to do. */
  after?: {
    /** Something still differs (an apply that converged has false). */
    differs: boolean;
    /** What still differs. */
    changes: PlanChange[];
  };
  /** The apply restarted the daemon. */
  restarted: boolean;
  /** The IPv6 check after the apply; null when verification is disabled or the host was not applied. */
  verification: VerificationResult | null;
  /** Warnings of this host (host key not checked, linger off, …). */
  warnings: string[];
  /** Why the apply failed (status `failed`). */
  error?: ErrorSummary;
}

export interface ApplyReport {
  command: "apply";
  /** 0 converged and verified; 2 converged but a host's IPv6 is unreachable; 1 a host failed. */
  exitCode: number;
  waves: string[][];
  /** Set when a wave failed and the later waves were not started (1-based). */
  stoppedAtWave?: number;
  outcome: WaveOutcome;
  hosts: ApplyRow[];
}

/** Converges wave by wave; a wave starts only when every host of the previous one applied and verified. */
export async function runApply(hosts: readonly ResolvedHost[], waves: string[][], options: RunOptions): Promise<ApplyReport> {
  const byName = new Map(hosts.map((host) => [host.name, host]));
  const rows: ApplyRow[] = [];
  let stoppedAtWave: number | undefined;
  const finished = counter(hosts.length, options);
  for (const [index, wave] of waves.entries()) {
    const waveNumber = index + 1;
    if (stoppedAtWave !== undefined) {
      rows.push(...wave.map((name): ApplyRow => ({ name, wave: waveNumber, status: "untouched", changes: [], restarted: false, verification: null, warnings: [] })));
      continue;
    }
    options.onProgress?.({ type: "wave-start", wave: waveNumber, waves: waves.length, hosts: wave });
    const waveRows = await mapBounded(wave, options.concurrency, (name) => applyOne(byName.get(name)!, waveNumber, options, finished));
    options.onProgress?.({ type: "wave-done", wave: waveNumber, waves: waves.length, statuses: tally(waveRows.map((row) => row.status)) });
    rows.push(...waveRows);
    if (waveRows.some((row) => row.status === "failed" || row.status === "unreachable")) stoppedAtWave = waveNumber;
  }
  const failed = rows.filter((row) => row.status === "failed" || row.status === "unreachable").map((row) => row.name);
  const exitCode = rows.some((row) => row.status === "failed") ? EXIT.error : failed.length > 0 ? EXIT.differs : EXIT.ok;
  return { command: "apply", exitCode, waves, ...(stoppedAtWave === undefined ? {} : { stoppedAtWave }), outcome: waveOutcome(waves, failed), hosts: rows };
}

async function applyOne({ name, spec, warnings: inputWarnings }: ResolvedHost, wave: number, options: RunOptions, finished: Finished): Promise<ApplyRow> {
  options.onProgress?.({ type: "host-start", name, activity: "applying", wave });
  const warnings = [...inputWarnings];
  try {
    const result = await options.engine.applyHost(spec, { onWarning: (warning) => warnings.push(warning) });
    const unreachable = result.verification !== null && !result.verification.reachable;
    const status: ApplyStatus = unreachable ? "unreachable" : result.wrote || result.restarted ? "converged" : "unchanged";
    finished(name, status, wave);
    return {
      name,
      wave,
      status,
      host: result.host,
      changes: result.plan.changes.map(withInput),
      after: { differs: result.postPlan.differs, changes: result.postPlan.changes.map(withInput) },
      restarted: result.restarted,
      verification: result.verification,
      // The engine also reports its own warnings through onWarning, prefixed with the host: keep one of each.
      warnings: unique([...warnings.filter((warning) => !result.warnings.some((own) => warning === `${result.host}: ${own}`)), ...result.warnings]),
    };
  } catch (error) {
    finished(name, "failed", wave);
    return { name, wave, status: "failed", changes: [], restarted: false, verification: null, warnings, error: summarize(error) };
  }
}

// ---------------------------------------------------------------------------------------------
// verify

/** reachable: every target answered; unreachable: one did not (see the diagnosis); error: the host could not be checked. */
export type VerifyStatus = "reachable" | "unreachable" | "error";

/** One host's verification. */
export interface VerifyRow {
  /** The host's name in the hosts file. */
  name: string;
  /** See `VerifyStatus`. */
  status: VerifyStatus;
  /** The check's result (absent when the host could not be checked). */
  verification?: VerificationResult;
  /** Warnings of this host (host key not checked, …). */
  warnings: string[];
  /** Why the host could not be checked (status `error`). */
  error?: ErrorSummary;
}

export interface VerifyReport {
  command: "verify";
  /** 0 every host reachable; 2 a host's IPv6 is unreachable; 1 a host could not be checked. */
  exitCode: number;
  hosts: VerifyRow[];
}

export async function runVerify(hosts: readonly ResolvedHost[], options: RunOptions): Promise<VerifyReport> {
  const finished = counter(hosts.length, options);
  const rows = await mapBounded(hosts, options.concurrency, async ({ name, spec, warnings: inputWarnings }): Promise<VerifyRow> => {
    options.onProgress?.({ type: "host-start", name, activity: "verifying" });
    const warnings = [...inputWarnings];
    try {
      const verification = await options.engine.verifyHost(spec, { onWarning: (warning) => warnings.push(warning) });
      const status: VerifyStatus = verification.reachable ? "reachable" : "unreachable";
      finished(name, status);
      return { name, status, verification, warnings: unique(warnings) };
    } catch (error) {
      finished(name, "error");
      return { name, status: "error", warnings, error: summarize(error) };
    }
  });
  const exitCode = rows.some((row) => row.status === "error") ? EXIT.error : rows.some((row) => row.status === "unreachable") ? EXIT.differs : EXIT.ok;
  return { command: "verify", exitCode, hosts: rows };
}

// ---------------------------------------------------------------------------------------------

export type Report = PlanReport | ApplyReport | VerifyReport;

/** Typed errors keep their parts; anything else (a bug, an unexpected failure) becomes one message. */
export function summarize(error: unknown): ErrorSummary {
  if (isRootlessDockerError(error)) {
    return {
      type: error.name,
      host: error.host,
      step: error.step,
      message: error.summary,
      fix: error.fix,
      evidence: error.evidence,
      ...(error.command === undefined ? {} : { command: error.command }),
      ...(error.exitCode === undefined ? {} : { exitCode: error.exitCode }),
    };
  }
  const message = error instanceof Error ? error.message : String(error);
  return { type: error instanceof Error ? error.name : "Error", host: null, step: "run", message, fix: "this is unexpected: run again with --trace FILE and report the message", evidence: [] };
}

type Finished = (name: string, status: string, wave?: number) => void;

/** Reports each finished host with how many of `total` are done. */
function counter(total: number, options: RunOptions): Finished {
  let done = 0;
  return (name, status, wave) => {
    done += 1;
    options.onProgress?.({ type: "host-done", name, status, done, total, ...(wave === undefined ? {} : { wave }) });
  };
}

function tally(values: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const value of values) counts[value] = (counts[value] ?? 0) + 1;
  return counts;
}

const unique = (values: readonly string[]) => [...new Set(values)];

/** Runs `work` on every item with at most `limit` running at once; results keep the items' order. */
export async function mapBounded<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, limit), items.length) }, worker));
  return results;
}
