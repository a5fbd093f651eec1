import { accessSync, constants } from "node:fs";
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
