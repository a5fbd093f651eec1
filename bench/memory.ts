/**
 * Peak memory of a whole process tree (pulumi with its language host, program and provider host; Ansible with its
 * workers and ssh clients): the sum of VmRSS over the tree, sampled from /proc every 10 ms while the command runs.
 *
 * Sampled rather than read once at exit because the children are gone by then, and a cgroup's memory.peak is not
 * available everywhere the benchmark runs (this machine mounts the memory controller as cgroup v1, and CI runs as
 * root without systemd to delegate one). A sum of RSS counts pages shared between processes (libraries, a forked
 * worker's untouched pages) once per process.
 */
import { readdirSync, readFileSync } from "node:fs";
import { run, type CommandResult, type RunOptions } from "../lab/exec";
import { performance } from "node:perf_hooks";

export const SAMPLE_INTERVAL_MS = 10;

/** VmRSS and VmHWM (KiB) from the text of /proc/PID/status; null for a process that has no memory any more (a zombie). */
export function statusMemory(statusText: string): { rssKiB: number; hwmKiB: number } | null {
  const field = (name: string) => {
    const match = new RegExp(`^${name}:\\s+(\\d+) kB$`, "m").exec(statusText);
    return match ? Number(match[1]) : null;
  };
  const rssKiB = field("VmRSS");
  return rssKiB === null ? null : { rssKiB, hwmKiB: field("VmHWM") ?? rssKiB };
}

/** `root` and every descendant, from each thread's /proc/PID/task/TID/children (a child belongs to the thread that forked it). */
export function processTree(root: number, read: (path: string) => string = (path) => readFileSync(path, "utf8"), list: (path: string) => string[] = readdirSync): number[] {
  const seen: number[] = [];
  const pending = [root];
  while (pending.length > 0) {
    const pid = pending.pop()!;
    if (seen.includes(pid)) continue;
    seen.push(pid);
    let threads: string[];
    try {
      threads = list(`/proc/${pid}/task`);
    } catch {
      continue; // exited between two reads
    }
    for (const tid of threads) {
      try {
        pending.push(...read(`/proc/${pid}/task/${tid}/children`).split(/\s+/).filter(Boolean).map(Number));
      } catch {
        // the thread ended
      }
    }
  }
  return seen;
}

export interface TreeMemory {
  /** Largest sum of VmRSS over the tree in one sample. */
  peakRssKiB: number;
  samples: number;
}

/** Samples the tree under `root` every SAMPLE_INTERVAL_MS until `stop()`. */
export class TreeSampler {
  private peakRssKiB = 0;
  private samples = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly root: number) {
    this.sample();
    this.timer = setInterval(() => this.sample(), SAMPLE_INTERVAL_MS);
  }

  private sample(): void {
    let sum = 0;
    for (const pid of processTree(this.root)) {
      try {
        sum += statusMemory(readFileSync(`/proc/${pid}/status`, "utf8"))?.rssKiB ?? 0;
      } catch {
        // exited between listing and reading
      }
    }
    this.samples++;
    this.peakRssKiB = Math.max(this.peakRssKiB, sum);
  }

  stop(): TreeMemory {
    clearInterval(this.timer);
    return { peakRssKiB: this.peakRssKiB, samples: this.samples };
  }
}

/** `run` with the wall time (spawn to exit) and the peak memory of the command's process tree. */
export async function runMeasured(argv: string[], options: RunOptions = {}): Promise<{ result: CommandResult; wallMs: number; memory: TreeMemory }> {
  let sampler: TreeSampler | undefined;
  const started = performance.now();
  const result = await run(argv, { ...options, onSpawn: (pid) => (sampler = new TreeSampler(pid)) });
  const wallMs = performance.now() - started;
  const memory = sampler?.stop() ?? { peakRssKiB: 0, samples: 0 };
  return { result, wallMs, memory };
}
