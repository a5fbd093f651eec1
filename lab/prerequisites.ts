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
 * Each host's systemd and user manager take inotify instances from root's per-user budget on the machine; Debian's
 * default of 128 stops the lab at about 25 hosts ("Too many open files"). Raised (never lowered) for the lab's sake.
 */
const INOTIFY_INSTANCES = "/proc/sys/fs/inotify/max_user_instances";
const INOTIFY_INSTANCES_NEEDED = 1024;

export function ensureInotifyInstances(log: (line: string) => void): void {
  const current = Number(readFileSync(INOTIFY_INSTANCES, "utf8"));
  if (current >= INOTIFY_INSTANCES_NEEDED) return;
  writeFileSync(INOTIFY_INSTANCES, `${INOTIFY_INSTANCES_NEEDED}\n`);
  log(`raised fs.inotify.max_user_instances from ${current} to ${INOTIFY_INSTANCES_NEEDED} (many hosts each run systemd)`);
}
