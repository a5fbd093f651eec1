import { existsSync, readdirSync, readFileSync, rmdirSync } from "node:fs";
import { join } from "node:path";
import { run, sleep } from "./exec";
import { LabError } from "./lab-error";

/** Mount points at or below `path` (from /proc/mounts), deepest first so they can be unmounted in order. */
export function mountsUnder(path: string): string[] {
  const prefix = path.endsWith("/") ? path : `${path}/`;
  return readFileSync("/proc/mounts", "utf8")
    .split("\n")
    .map((line) => line.split(" ")[1])
    .filter((mountPoint): mountPoint is string => mountPoint !== undefined)
    // /proc/mounts escapes space, tab, newline and backslash as octal.
    .map((mountPoint) => mountPoint.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8))))
    .filter((mountPoint) => mountPoint === path || mountPoint.startsWith(prefix))
    .sort((a, b) => b.length - a.length);
}

export async function unmountUnder(path: string, owner: string): Promise<void> {
  for (const mountPoint of mountsUnder(path)) {
    const result = await run(["umount", mountPoint], { timeoutMs: 30_000 });
    // Something still holds it (a late process of a host): detach it now, the kernel frees it when released.
    if (result.exitCode !== 0) await run(["umount", "--lazy", mountPoint], { timeoutMs: 30_000 });
  }
  const left = mountsUnder(path);
  if (left.length > 0) {
    throw new LabError("mounts left after unmount", `run \`umount --lazy ${left[0]}\` by hand`, { host: owner, step: "unmount", evidence: left });
  }
}

export interface ProcessInfo {
  pid: number;
  argv: string[];
}

/** Live processes whose command line matches; read from /proc so leftovers are found after a crash. */
export function processesWhere(matches: (argv: string[]) => boolean): ProcessInfo[] {
  const found: ProcessInfo[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0").filter((arg) => arg !== "");
    } catch {
      continue; // exited while we looked
    }
    if (argv.length > 0 && matches(argv) && !isGone(Number(entry))) found.push({ pid: Number(entry), argv });
  }
  return found;
}

export function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Exited or a zombie: this machine's PID 1 reaps late, so a zombie counts as gone. */
export function isGone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
  } catch {
    return true;
  }
}

/** SIGKILLs each pid and its process group, then waits (bounded) until all are gone. */
export async function killAndWait(pids: number[], owner: string, timeoutMs = 15_000): Promise<void> {
  for (const pid of pids) {
    for (const target of [-pid, pid]) {
      try {
        process.kill(target, "SIGKILL");
      } catch {
        // not a group leader, or already gone
      }
    }
  }
  const deadline = Date.now() + timeoutMs;
  while (pids.some((pid) => !isGone(pid))) {
    if (Date.now() > deadline) {
      const alive = pids.filter((pid) => !isGone(pid));
      throw new LabError(`processes still alive after ${timeoutMs / 1000} s of SIGKILL`, "look at them with `ps -fp PID` (a process in D state waits on I/O)", {
        host: owner,
        step: "stop processes",
        evidence: alive.map((pid) => `pid ${pid}`),
      });
    }
    await sleep(100);
  }
}

/** Where the cgroup v2 hierarchy is mounted (`/sys/fs/cgroup/unified` on a hybrid machine), or null without one. */
export function cgroup2Mount(): string | null {
  const line = readFileSync("/proc/mounts", "utf8").split("\n").find((entry) => entry.split(" ")[2] === "cgroup2");
  return line?.split(" ")[1] ?? null;
}

/** Removes a cgroup v2 directory and everything below it, deepest first (a cgroup is removed with rmdir once empty). */
export function removeCgroupTree(path: string): void {
  if (!existsSync(path)) return;
  for (const entry of readdirSync(path, { withFileTypes: true })) if (entry.isDirectory()) removeCgroupTree(join(path, entry.name));
  rmdirSync(path);
}
