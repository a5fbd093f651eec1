/**
 * Rolling order for a fleet: restarting rootless Docker stops every container on the host, so hosts
 * are converged in waves, each starting only after the previous one applied and verified.
 * Shared by `RootlessDockerFleet` (Pulumi) and the CLI's `apply`, so both roll out in the same order.
 */
import type { InputProblem, Validation } from "./types";

/** How a rollout is split into waves: every host of a wave restarts together, a wave starts when the previous one applied and verified. */
export interface WaveOptions {
  /** Hosts per wave. */
  batchSize?: number;
  /** Hosts allowed to be restarting at the same time; same effect as batchSize (a wave restarts together). */
  maxUnavailable?: number;
  /** A first wave of this many hosts (true = 1) before the rest. */
  canary?: number | boolean;
}

/** Share of the fleet restarted at once when neither batchSize nor maxUnavailable is given (Kubernetes' rolling-update default). */
const DEFAULT_UNAVAILABLE_SHARE = 0.25;

/** Splits the hosts, in the given order, into waves; every problem is reported at once with its property path. */
export function planWaves(hostNames: readonly string[], options: WaveOptions = {}): Validation<string[][]> {
  const problems = [...hostNameProblems(hostNames), ...optionProblems(options, hostNames.length)];
  if (problems.length > 0) return { ok: false, problems };

  const canaryCount = options.canary === true ? 1 : options.canary || 0;
  const waveSize =
    options.batchSize ?? options.maxUnavailable ?? Math.max(1, Math.floor(hostNames.length * DEFAULT_UNAVAILABLE_SHARE));
  const waves: string[][] = canaryCount > 0 ? [hostNames.slice(0, canaryCount)] : [];
  for (let start = canaryCount; start < hostNames.length; start += waveSize) {
    waves.push(hostNames.slice(start, start + waveSize));
  }
  return { ok: true, value: waves, warnings: [] };
}

function hostNameProblems(hostNames: readonly string[]): InputProblem[] {
  if (hostNames.length === 0) return [{ property: "hosts", reason: "at least one host is required" }];
  const firstIndex = new Map<string, number>();
  const problems: InputProblem[] = [];
  hostNames.forEach((name, index) => {
    if (typeof name !== "string" || name.trim() === "") {
      problems.push({ property: `hosts[${index}].name`, reason: "a non-empty name is required" });
    } else if (firstIndex.has(name)) {
      problems.push({ property: `hosts[${index}].name`, reason: `"${name}" is already the name of hosts[${firstIndex.get(name)}]; names must be unique` });
    } else {
      firstIndex.set(name, index);
    }
  });
  return problems;
}

function optionProblems(options: WaveOptions, hostCount: number): InputProblem[] {
  const problems: InputProblem[] = [];
  const positiveInteger = (property: "batchSize" | "maxUnavailable") => {
    const value = options[property];
    if (value !== undefined && !(Number.isInteger(value) && value >= 1)) {
      problems.push({ property, reason: `must be a whole number of hosts, at least 1 (got ${JSON.stringify(value)})` });
    }
  };
  positiveInteger("batchSize");
  positiveInteger("maxUnavailable");
  if (options.batchSize !== undefined && options.maxUnavailable !== undefined) {
    problems.push({ property: "maxUnavailable", reason: "set either batchSize or maxUnavailable, not both: both mean hosts restarted per wave" });
  }
  const { canary } = options;
  if (canary !== undefined && typeof canary !== "boolean") {
    if (!(Number.isInteger(canary) && canary >= 0)) {
      problems.push({ property: "canary", reason: `must be true, false or a whole number of hosts (got ${JSON.stringify(canary)})` });
    } else if (hostCount > 0 && canary >= hostCount) {
      problems.push({ property: "canary", reason: `a canary wave of ${canary} would leave no host for the later waves (${hostCount} hosts)` });
    }
  }
  return problems;
}

/** Where a rollout stands when `failed` hosts failed: what a fleet error tells the user. */
export interface WaveOutcome {
  done: string[];
  failed: string[];
  untouched: string[];
}

/**
 * Summarises a rollout stopped by failures: hosts of waves before the first failing wave, and the
 * failing wave's hosts that did not fail, are done; everything after that wave is untouched.
 */
export function waveOutcome(waves: readonly string[][], failed: readonly string[]): WaveOutcome {
  const failedSet = new Set(failed);
  const firstFailingWave = waves.findIndex((wave) => wave.some((name) => failedSet.has(name)));
  const lastStartedWave = firstFailingWave < 0 ? waves.length - 1 : firstFailingWave;
  const started = waves.slice(0, lastStartedWave + 1).flat();
  return {
    done: started.filter((name) => !failedSet.has(name)),
    failed: started.filter((name) => failedSet.has(name)),
    untouched: waves.slice(lastStartedWave + 1).flat(),
  };
}

/** One line for an error message: `done: a, b; failed: c; untouched: d, e`. */
export function describeWaveOutcome(outcome: WaveOutcome): string {
  const list = (names: string[]) => (names.length > 0 ? names.join(", ") : "none");
  return `done: ${list(outcome.done)}; failed: ${list(outcome.failed)}; untouched: ${list(outcome.untouched)}`;
}

/** A fleet host's place in its rollout, handed to its resource so that its failure can say where the fleet stands. */
export interface Rollout {
  /** The fleet's resource name. */
  fleet: string;
  /** This host's name in the fleet. */
  host: string;
  /** Every host of the fleet, wave by wave. */
  waves: string[][];
}

/** Names a rollout carries into error messages: ASCII host-name characters only, so nothing can disguise a host. */
export const ROLLOUT_NAME = /^[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,252})$/;
export const ROLLOUT_NAME_RULE = "must be an ASCII name of at most 253 characters (letters, digits, '_', '.', '-'; not starting with '.' or '-'), like a host name";

/**
 * The line a failed fleet host adds to its error. Pulumi starts no dependent of a failed resource, so later waves stay
 * untouched; the other hosts of the same wave run in parallel and may still be finishing, so they are not called done.
 */
export function describeFailedHost(rollout: Rollout): string {
  const waveIndex = rollout.waves.findIndex((wave) => wave.includes(rollout.host));
  const peers = rollout.waves[waveIndex]?.filter((name) => name !== rollout.host) ?? [];
  const outcome = waveOutcome(rollout.waves, [rollout.host]);
  const earlier = { ...outcome, done: outcome.done.filter((name) => !peers.includes(name)) };
  const stillRunning = peers.length > 0 ? `; still finishing in the same wave: ${peers.join(", ")}` : "";
  return `fleet ${rollout.fleet}: wave ${waveIndex + 1} of ${rollout.waves.length} failed at ${rollout.host}, later waves are not started: ${describeWaveOutcome(earlier)}${stillRunning}`;
}

/**
 * How a host's own settings combine with the shared ones (fleet `defaults`, hosts file `defaults:`):
 * mappings (`connection`, `verify`) are merged key by key, so shared `connection.user` combines with a
 * host's `connection.host`; lists and scalars from the host replace the shared value.
 */
export function mergeSettings(shared: unknown, own: unknown): unknown {
  if (own === undefined) return shared;
  if (!isMapping(shared) || !isMapping(own)) return own;
  const result: Record<string, unknown> = { ...shared };
  for (const [key, value] of Object.entries(own)) result[key] = mergeSettings(result[key], value);
  return result;
}

export const isMapping = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);
