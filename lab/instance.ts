import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { LabError } from "./lab-error";

export const STATE_ROOT = "/var/lib/pulumi-rootless-docker-lab";
export const CACHE_ROOT = "/var/cache/pulumi-rootless-docker-lab";
export const TARGET_TCP_PORT = 8081;
export const HOST_USER = "dev";
export const HOST_UID = 1000;

/**
 * Every name and subnet of one lab instance (env `RDL_LAB`, default `lab`). The subnet number starts from a hash of
 * the instance name and is claimed in the instance's state directory when it comes up; a number another running
 * instance has claimed is skipped, so that two instances (tests and a demo) can run side by side.
 */
export interface Instance {
  name: string;
  /** 1–250: the third IPv4 octet and the fourth IPv6 group of every lab subnet of this instance. */
  subnet: number;
  /** The subnet is this instance's (claimed when it came up): only then are its link names ours to delete. */
  subnetClaimed: boolean;
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

/** `RDL_LAB_SUFFIX` is appended to every instance name, so that two checkouts can run the same tests side by side. */
export function currentInstance(): Instance {
  return instanceNamed(`${process.env.RDL_LAB ?? "lab"}${process.env.RDL_LAB_SUFFIX ?? ""}`);
}

export function instanceNamed(name: string): Instance {
  if (!/^[a-z][a-z0-9]{0,19}$/.test(name)) {
    throw new LabError(`invalid lab instance name "${name}"`, "set RDL_LAB to 1–20 lower-case letters or digits, starting with a letter", {
      host: name,
      step: "choose instance",
    });
  }
  const stateDir = join(STATE_ROOT, name);
  const claimed = readClaim(stateDir);
  const subnet = claimed ?? firstFreeSubnet(1 + (createHash("sha256").update(name).digest().readUInt32BE(0) % SUBNETS), claimsOfOthers(name));
  const linkPrefix = `rdl${subnet}`;
  return {
    name,
    subnet,
    subnetClaimed: claimed !== undefined,
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

const SUBNETS = 250;
const CLAIM_FILE = "subnet";

function readClaim(stateDir: string): number | undefined {
  const path = join(stateDir, CLAIM_FILE);
  return existsSync(path) ? Number(readFileSync(path, "utf8")) : undefined;
}

function claimsOfOthers(name: string): Set<number> {
  if (!existsSync(STATE_ROOT)) return new Set();
  const others = readdirSync(STATE_ROOT).filter((entry) => entry !== name);
  return new Set(others.map((other) => readClaim(join(STATE_ROOT, other))).filter((subnet): subnet is number => subnet !== undefined));
}

function firstFreeSubnet(preferred: number, taken: Set<number>): number {
  for (let offset = 0; offset < SUBNETS; offset++) {
    const candidate = 1 + ((preferred - 1 + offset) % SUBNETS);
    if (!taken.has(candidate)) return candidate;
  }
  throw new LabError("every lab subnet is taken", "stop some lab instances: npm run lab -- down (with their RDL_LAB)", { host: "machine", step: "choose instance" });
}

/** Records the instance's subnet in its state directory (which must exist), so that other instances skip it. */
export function claimSubnet(instance: Instance): Instance {
  if (!instance.subnetClaimed) writeFileSync(join(instance.stateDir, CLAIM_FILE), `${instance.subnet}\n`);
  return { ...instance, subnetClaimed: true };
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
