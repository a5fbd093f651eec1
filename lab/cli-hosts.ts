/**
 * `--lab`: the hosts of the repository's test lab (instance `RDL_LAB`, default `lab`), as hosts-file
 * entries. The lab ships with the repository, not the package: the CLI loads this file by path, so the
 * installed CLI works without it and says so when `--lab` is used there.
 */
import type { Validation } from "../provider/core/types";
import type { HostEntry } from "../provider/cli/hosts";
import { BUSYBOX_IMAGE } from "./rootfs";

/** Settings for lab hosts when nothing else is given (`--lab` without `--hosts`, the program without config): IPv6 that must verify. */
export const LAB_DEFAULTS = { networkDriver: "slirp4netns", ipv6: true, verify: { required: true, timeoutSeconds: 30 } };

/** The lab host fields used here (a subset of `LabHost` in lab/api.ts). */
export interface LabHostInfo {
  name: string;
  address: string;
  port: number;
  user: string;
  privateKeyPath: string;
  hostPublicKey: string;
  target: { ipv6: string; ipv6TcpPort?: number };
}

export async function readLab(): Promise<Validation<LabHostInfo[]>> {
  // Loaded when asked for: the lab's module reads RDL_LAB when it is loaded.
  const lab = require("./api") as { labStatus(): LabHostInfo[] | Promise<LabHostInfo[]> };
  const hosts = await lab.labStatus();
  if (hosts.length === 0) {
    return { ok: false, problems: [{ property: "--lab", reason: `lab "${process.env.RDL_LAB ?? "lab"}" has no hosts: start it with npm run lab -- up` }] };
  }
  return { ok: true, value: hosts, warnings: [] };
}

/** Each lab host with its host key pinned and the lab's IPv6 target as the verification target. */
export function labHostEntries(labHosts: readonly LabHostInfo[]): HostEntry[] {
  return labHosts.map((host) => ({
    name: host.name,
    connection: { host: host.address, port: host.port, user: host.user, privateKeyPath: host.privateKeyPath, hostKey: host.hostPublicKey },
    // The lab has no registry: each host imports its busybox as local/busybox.
    verify: { targets: [{ address: host.target.ipv6, ...(host.target.ipv6TcpPort === undefined ? {} : { tcpPort: host.target.ipv6TcpPort }) }], image: BUSYBOX_IMAGE },
  }));
}
