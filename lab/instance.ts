import { createHash } from "node:crypto";
import { join } from "node:path";
import { LabError } from "./lab-error";

export const STATE_ROOT = "/var/lib/pulumi-rootless-docker-lab";
export const CACHE_ROOT = "/var/cache/pulumi-rootless-docker-lab";
export const TARGET_TCP_PORT = 8081;
export const HOST_USER = "dev";
export const HOST_UID = 1000;

/**
 * Every name and subnet of one lab instance (env `RDL_LAB`, default `lab`). The subnet number is derived
 * from the instance name so that two instances (tests and a demo) can run side by side.
 */
export interface Instance {
  name: string;
  /** 1–250: the third IPv4 octet and the fourth IPv6 group of every lab subnet of this instance. */
  subnet: number;
  stateDir: string;
  /** Prefix of every netns of this instance: `rdl-<name>-`. */
  netnsPrefix: string;
  hubNetns: string;
  /** Prefix of every interface name of this instance (kept short: Linux allows 15 characters). */
  linkPrefix: string;
  bridge: string;
  /** The root↔hub veth pair. */
  rootLink: string;
  hubLink: string;
  privateKeyPath: string;
  knownHostsPath: string;
  statePath: string;
  target: { ipv6: string; ipv6TcpPort: number; ipv4: string };
  /** Addresses on the hub bridge: the hosts' default gateways. */
  gateway: { ipv4: string; ipv6: string };
  /** The root↔hub link. */
  rootSide: { ipv4: string; ipv6: string };
  hubSide: { ipv4: string; ipv6: string };
  hostCidrs: { ipv4: string; ipv6: string };
}

export function currentInstance(): Instance {
  return instanceNamed(process.env.RDL_LAB ?? "lab");
}

export function instanceNamed(name: string): Instance {
  if (!/^[a-z][a-z0-9]{0,19}$/.test(name)) {
    throw new LabError(`invalid lab instance name "${name}"`, "set RDL_LAB to 1–20 lower-case letters or digits, starting with a letter", {
      host: name,
      step: "choose instance",
    });
  }
  const subnet = 1 + (createHash("sha256").update(name).digest().readUInt32BE(0) % 250);
  const stateDir = join(STATE_ROOT, name);
  const linkPrefix = `rdl${subnet}`;
  return {
    name,
    subnet,
    stateDir,
    netnsPrefix: `rdl-${name}-`,
    hubNetns: `rdl-${name}-hub`,
    linkPrefix,
    bridge: `${linkPrefix}br`,
    rootLink: `${linkPrefix}root`,
    hubLink: `${linkPrefix}hub`,
    privateKeyPath: join(stateDir, "id_ed25519"),
    knownHostsPath: join(stateDir, "known_hosts"),
    statePath: join(stateDir, "state.json"),
    target: { ipv6: `fd99:0:0:${subnet}::1`, ipv6TcpPort: TARGET_TCP_PORT, ipv4: `10.99.${subnet}.1` },
    gateway: { ipv4: `10.77.${subnet}.1`, ipv6: `fd77:0:0:${subnet}::1` },
    rootSide: { ipv4: `10.78.${subnet}.1`, ipv6: `fd78:0:0:${subnet}::1` },
    hubSide: { ipv4: `10.78.${subnet}.2`, ipv6: `fd78:0:0:${subnet}::2` },
    hostCidrs: { ipv4: `10.77.${subnet}.0/24`, ipv6: `fd77:0:0:${subnet}::/64` },
  };
}

/** Per-host names and addresses; hosts are numbered from 1. */
export function hostNaming(instance: Instance, index: number) {
  if (index < 1 || index > 200) {
    throw new LabError(`host number ${index} is out of range`, "an instance holds at most 200 hosts; run `npm run lab -- down`", {
      host: instance.name,
      step: "allocate host",
    });
  }
  const name = `${instance.name}-${index}`;
  const dir = join(instance.stateDir, "hosts", name);
  return {
    name,
    netns: `${instance.netnsPrefix}${index}`,
    hubPort: `${instance.linkPrefix}v${index}`,
    dir,
    rootDir: join(dir, "root"),
    upperDir: join(dir, "upper"),
    workDir: join(dir, "work"),
    dockerDataDir: join(dir, "docker-data"),
    consoleLog: join(dir, "console.log"),
    ipv4: `10.77.${instance.subnet}.${10 + index}`,
    ipv6: `fd77:0:0:${instance.subnet}::${10 + index}`,
  };
}

export type HostNaming = ReturnType<typeof hostNaming>;
