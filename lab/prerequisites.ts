import { accessSync, constants, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { LabError } from "./lab-error";

/** Each command the lab runs on the machine, and the Debian package that provides it. */
const COMMANDS: Record<string, string> = {
  debootstrap: "debootstrap",
  "systemd-nspawn": "systemd-container",
  ip: "iproute2",
  tc: "iproute2",
  ssh: "openssh-client",
  "ssh-keygen": "openssh-client",
  nsenter: "util-linux",
  mount: "mount",
  umount: "mount",
  chroot: "coreutils",
  nft: "nftables",
};

function onPath(command: string): boolean {
  return (process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin").split(":").some((dir) => {
    try {
      accessSync(join(dir, command), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** Throws a LabError naming what to run when the lab cannot work on this machine. */
export function assertPrerequisites(): void {
  if (process.getuid?.() !== 0) {
    throw new LabError("the lab must run as root", "run it as root (it creates network namespaces, mounts and containers)", {
      host: "machine",
      step: "check prerequisites",
    });
  }
  const missing = Object.keys(COMMANDS).filter((command) => !onPath(command));
  if (missing.length > 0) {
    const packages = [...new Set(missing.map((command) => COMMANDS[command]))];
    throw new LabError(`missing commands: ${missing.join(", ")}`, `apt-get install -y --no-install-recommends ${packages.join(" ")}`, {
      host: "machine",
      step: "check prerequisites",
    });
  }
}

/**
 * Per-user kernel budgets that every lab host's users draw from together (the hosts share the machine's kernel and
 * uids). Raised (never lowered) for the lab's sake.
 */
const KERNEL_LIMITS = [
  // Each host's systemd and user manager take inotify instances from root's budget; Debian's default of 128 stops
  // the lab at about 25 hosts ("Too many open files").
  { path: "/proc/sys/fs/inotify/max_user_instances", needed: 1024, why: "many hosts each run systemd" },
  // Every host's `dev` is uid 1000, and each ssh session and `docker run` (runc's session keyring) takes keys from
  // that one uid's quota; the default of 200 keys (20000 bytes) fails containers with "disk quota exceeded" once
  // about 30 hosts are up.
  { path: "/proc/sys/kernel/keys/maxkeys", needed: 20_000, why: "every host's dev user shares one key quota" },
  { path: "/proc/sys/kernel/keys/maxbytes", needed: 2_000_000, why: "every host's dev user shares one key quota" },
];

export function ensureKernelLimits(log: (line: string) => void): void {
  for (const { path, needed, why } of KERNEL_LIMITS) {
    const current = Number(readFileSync(path, "utf8"));
    if (current >= needed) continue;
    const name = path.slice("/proc/sys/".length).replaceAll("/", ".");
    try {
      writeFileSync(path, `${needed}\n`);
      log(`raised ${name} from ${current} to ${needed} (${why})`);
    } catch (error) {
      // A machine that forbids it can still run smaller labs: say so, and what to do for larger ones.
      log(`could not raise ${name} from ${current} to ${needed} (${why}): ${(error as Error).message}; run: sysctl -w ${name}=${needed}`);
    }
  }
}
