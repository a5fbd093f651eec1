/**
 * The CLI's three commands over the same engine the Pulumi provider uses (no second implementation):
 * each host is worked on in its own SSH session, in parallel up to a bound, and one failing host never
 * stops the others from being reported. Results are plain data; rendering is in render.ts.
 */
import type { RunningNetwork } from "../core/running";
import type { CapabilityProblem, NetworkSpec, PropertyChange, VerificationResult } from "../core/types";
import { waveOutcome, type WaveOutcome } from "../core/waves";
import type { ApplyResult, EngineOptions, InspectResult } from "../engine/types";
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
  /** Called as each host starts and finishes, for live progress. */
  onProgress?: (host: string, event: string) => void;
}

/** An error as shown to people and machines: the typed error's name and its message (which names host, step and fix). */
export interface ErrorSummary {
  type: string;
  message: string;
}

export const EXIT = { ok: 0, error: 1, differs: 2 } as const;

// ---------------------------------------------------------------------------------------------
// plan

/** in-sync: nothing differs; differs: apply would change something; blocked: apply would refuse (capability errors); error: not planned. */
export type PlanStatus = "in-sync" | "differs" | "blocked" | "error";

export interface PlanRow {
  name: string;
  status: PlanStatus;
  /** `user@host:port`, once connected. */
  host?: string;
  changes: PropertyChange[];
  problems: CapabilityProblem[];
  running?: RunningNetwork;
  error?: ErrorSummary;
}

export interface PlanReport {
  command: "plan";
  /** 0 nothing differs; 2 something differs; 1 a host could not be planned or cannot be converged (an unread host may hide drift). */
  exitCode: number;
  hosts: PlanRow[];
}

export async function runPlan(hosts: readonly ResolvedHost[], options: RunOptions): Promise<PlanReport> {
  const rows = await mapBounded(hosts, options.concurrency, async ({ name, spec }): Promise<PlanRow> => {
    options.onProgress?.(name, "planning");
    try {
      const result = await options.engine.inspectHost(spec);
      const blocked = result.plan.problems.some((problem) => problem.severity === "error");
      const status: PlanStatus = blocked ? "blocked" : result.plan.differs ? "differs" : "in-sync";
      options.onProgress?.(name, status);
      return { name, status, host: result.host, changes: result.plan.changes, problems: result.plan.problems, running: result.running };
    } catch (error) {
      options.onProgress?.(name, "error");
      return { name, status: "error", changes: [], problems: [], error: summarize(error) };
    }
  });
  const exitCode = rows.some((row) => row.status === "error" || row.status === "blocked")
    ? EXIT.error
    : rows.some((row) => row.status === "differs")
      ? EXIT.differs
      : EXIT.ok;
  return { command: "plan", exitCode, hosts: rows };
}

// ---------------------------------------------------------------------------------------------
// apply

/** unreachable: applied, but verification (not required, so not rolled back) found IPv6 unreachable. */
export type ApplyStatus = "converged" | "unchanged" | "unreachable" | "failed" | "untouched";

export interface ApplyRow {
  name: string;
  /** 1-based wave number. */
  wave: number;
  status: ApplyStatus;
  host?: string;
  changes: PropertyChange[];
  restarted: boolean;
  verification: VerificationResult | null;
  warnings: string[];
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
  for (const [index, wave] of waves.entries()) {
    const waveNumber = index + 1;
    if (stoppedAtWave !== undefined) {
      rows.push(...wave.map((name): ApplyRow => ({ name, wave: waveNumber, status: "untouched", changes: [], restarted: false, verification: null, warnings: [] })));
      continue;
    }
    const waveRows = await mapBounded(wave, options.concurrency, (name) => applyOne(name, byName.get(name)!.spec, waveNumber, options));
    rows.push(...waveRows);
    if (waveRows.some((row) => row.status === "failed" || row.status === "unreachable")) stoppedAtWave = waveNumber;
  }
  const failed = rows.filter((row) => row.status === "failed" || row.status === "unreachable").map((row) => row.name);
  const exitCode = rows.some((row) => row.status === "failed") ? EXIT.error : failed.length > 0 ? EXIT.differs : EXIT.ok;
  return { command: "apply", exitCode, waves, ...(stoppedAtWave === undefined ? {} : { stoppedAtWave }), outcome: waveOutcome(waves, failed), hosts: rows };
}

async function applyOne(name: string, spec: NetworkSpec, wave: number, options: RunOptions): Promise<ApplyRow> {
  options.onProgress?.(name, `applying (wave ${wave})`);
  const warnings: string[] = [];
  try {
    const result = await options.engine.applyHost(spec, { onWarning: (warning) => warnings.push(warning) });
    const unreachable = result.verification !== null && !result.verification.reachable;
    const status: ApplyStatus = unreachable ? "unreachable" : result.wrote || result.restarted ? "converged" : "unchanged";
    options.onProgress?.(name, status);
    return {
      name,
      wave,
      status,
      host: result.host,
      changes: result.plan.changes,
      restarted: result.restarted,
      verification: result.verification,
      warnings: [...new Set([...warnings, ...result.warnings])],
    };
  } catch (error) {
    options.onProgress?.(name, "failed");
    return { name, wave, status: "failed", changes: [], restarted: false, verification: null, warnings, error: summarize(error) };
  }
}

// ---------------------------------------------------------------------------------------------
// verify

export type VerifyStatus = "reachable" | "unreachable" | "error";

export interface VerifyRow {
  name: string;
  status: VerifyStatus;
  verification?: VerificationResult;
  error?: ErrorSummary;
}

export interface VerifyReport {
  command: "verify";
  /** 0 every host reachable; 2 a host's IPv6 is unreachable; 1 a host could not be checked. */
  exitCode: number;
  hosts: VerifyRow[];
}

export async function runVerify(hosts: readonly ResolvedHost[], options: RunOptions): Promise<VerifyReport> {
  const rows = await mapBounded(hosts, options.concurrency, async ({ name, spec }): Promise<VerifyRow> => {
    options.onProgress?.(name, "verifying");
    try {
      const verification = await options.engine.verifyHost(spec);
      const status: VerifyStatus = verification.reachable ? "reachable" : "unreachable";
      options.onProgress?.(name, status);
      return { name, status, verification };
    } catch (error) {
      options.onProgress?.(name, "error");
      return { name, status: "error", error: summarize(error) };
    }
  });
  const exitCode = rows.some((row) => row.status === "error") ? EXIT.error : rows.some((row) => row.status === "unreachable") ? EXIT.differs : EXIT.ok;
  return { command: "verify", exitCode, hosts: rows };
}

// ---------------------------------------------------------------------------------------------

export type Report = PlanReport | ApplyReport | VerifyReport;

function summarize(error: unknown): ErrorSummary {
  return error instanceof Error ? { type: error.name, message: error.message } : { type: "Error", message: String(error) };
}

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
