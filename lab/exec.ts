import { spawn } from "node:child_process";
import { availableParallelism, loadavg } from "node:os";
import { LabError } from "./lab-error";

export interface CommandResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Kill the command (SIGKILL) after this long; the result then has exit code 124 like timeout(1). */
  timeoutMs?: number;
  input?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Called with the child's pid once it is spawned (the benchmark samples the memory of its process tree). */
  onSpawn?: (pid: number) => void;
}

/** Runs argv without a shell and never throws on a non-zero exit. */
export function run(argv: string[], options: RunOptions = {}): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), { env: options.env ?? process.env, cwd: options.cwd, stdio: ["pipe", "pipe", "pipe"] });
    if (child.pid !== undefined) options.onSpawn?.(child.pid);
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let timedOut = false;
    const timer =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            child.kill("SIGKILL");
          }, options.timeoutMs);
    child.stdout.on("data", (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on("data", (chunk: Buffer) => stderr.push(chunk));
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const exitCode = timedOut ? 124 : (code ?? 128 + (signal === "SIGKILL" ? 9 : 15));
      resolve({ exitCode, stdout: Buffer.concat(stdout).toString(), stderr: Buffer.concat(stderr).toString() });
    });
    // A command that exits without reading its stdin must not crash us with EPIPE.
    child.stdin.on("error", () => undefined);
    child.stdin.end(options.input ?? "");
  });
}

/** Runs argv and throws a LabError naming the host and step when it exits non-zero. */
export async function runChecked(argv: string[], host: string, step: string, options: RunOptions = {}): Promise<CommandResult> {
  const result = await run(argv, options);
  if (result.exitCode !== 0) {
    throw new LabError(`command failed${result.exitCode === 124 ? " (timed out)" : ""}`, "", {
      host,
      step,
      command: argv.join(" "),
      exitCode: result.exitCode,
      evidence: lastLines(result.stderr + result.stdout, 15),
    });
  }
  return result;
}

export function lastLines(text: string, count: number): string[] {
  // Console logs carry colour escapes from systemd; evidence is read by people.
  const plain = text.replace(/\x1b\[[0-9;]*[A-Za-z]/g, "");
  return plain.split(/\r?\n/).filter((line) => line.trim() !== "").slice(-count);
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * How much slower than idle this machine is now: the 1-minute load average per core, between 1 and 5. Waits for a
 * host scale with it, so a loaded machine (other builds, many hosts booting) gets more time instead of a false failure.
 */
export function loadFactor(): number {
  return Math.min(5, Math.max(1, loadavg()[0] / availableParallelism()));
}

/**
 * Polls `probe` until it returns a value (not undefined) or the wait runs out; then throws a LabError built from the
 * last evidence the caller can give. With `scaleWithLoad`, the wait is `timeoutMs` × loadFactor(), re-read at every
 * poll, and so is the interval between polls (fewer probes from many waiting hosts on a loaded machine).
 */
export async function waitFor<T>(
  probe: () => Promise<T | undefined>,
  options: {
    host: string;
    step: string;
    timeoutMs: number;
    intervalMs?: number;
    scaleWithLoad?: boolean;
    evidence: () => Promise<string[]>;
    hint?: string;
  },
): Promise<T> {
  const started = Date.now();
  const factor = () => (options.scaleWithLoad ? loadFactor() : 1);
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    const waited = Date.now() - started;
    if (waited >= options.timeoutMs * factor()) {
      const load = options.scaleWithLoad ? ` (load average ${loadavg()[0].toFixed(1)} on ${availableParallelism()} cores)` : "";
      throw new LabError(`not ready after ${Math.round(waited / 1000)} s${load}`, options.hint ?? "", {
        host: options.host,
        step: options.step,
        evidence: await options.evidence(),
      });
    }
    await sleep((options.intervalMs ?? 250) * factor());
  }
}
