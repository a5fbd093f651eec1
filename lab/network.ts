import { spawn } from "node:child_process";
import { openSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { run, runChecked, waitFor } from "./exec";
import type { HostNaming, Instance } from "./instance";
import { LabError } from "./lab-error";
import { processesWhere } from "./system";

// Layout: hosts ── veth ── hub bridge (hub netns, forwarding on, no default route) ── veth ── machine.
// Only the lab subnets are routed from the machine, whose own forwarding stays off: nothing leaves it.

const ip = (...args: string[]) => ["ip", ...args];

export function netnsExists(netns: string): Promise<boolean> {
  return run(ip("netns", "list")).then((result) => result.stdout.split("\n").some((line) => line.split(" ")[0] === netns));
}

export async function labNetnsList(instance: Instance): Promise<string[]> {
  const result = await run(ip("netns", "list"));
  return result.stdout
    .split("\n")
    .map((line) => line.split(" ")[0])
    .filter((netns) => netns.startsWith(instance.netnsPrefix));
}

/** Writes a sysctl inside a netns (values under /proc/sys/net are per netns). */
export function setNetnsSysctl(netns: string, key: string, value: string, owner: string): Promise<unknown> {
  const path = `/proc/sys/${key.replace(/\./g, "/")}`;
  return runChecked(["ip", "netns", "exec", netns, "sh", "-c", `echo "$1" > "$2"`, "sh", value, path], owner, `set ${key}`);
}

/** Creates the hub netns, bridge, root link, routes and target addresses unless they exist. */
export async function ensureHub(instance: Instance): Promise<void> {
  if (await netnsExists(instance.hubNetns)) return;
  const owner = instance.name;
  const clash = await run(ip("route", "show", instance.hostCidrs.ipv4));
  if (clash.stdout.trim() !== "") {
    throw new LabError(`subnet ${instance.hostCidrs.ipv4} is already routed`, "another lab instance derived the same subnet: pick another RDL_LAB name", {
      host: owner,
      step: "create hub",
      evidence: clash.stdout.split("\n"),
    });
  }
  const hub = instance.hubNetns;
  const steps: string[][] = [
    ip("netns", "add", hub),
    ip("-n", hub, "link", "set", "lo", "up"),
    ip("-n", hub, "link", "add", instance.bridge, "type", "bridge"),
    ip("-n", hub, "addr", "add", `${instance.gateway.ipv4}/24`, "dev", instance.bridge),
    ip("-n", hub, "addr", "add", `${instance.gateway.ipv6}/64`, "dev", instance.bridge, "nodad"),
    ip("-n", hub, "link", "set", instance.bridge, "up"),
    // The target has addresses of its own: pasta maps the hosts' gateway address to the host's loopback.
    ip("-n", hub, "addr", "add", `${instance.target.ipv4}/32`, "dev", "lo"),
    ip("-n", hub, "addr", "add", `${instance.target.ipv6}/128`, "dev", "lo", "nodad"),
    ip("link", "add", instance.rootLink, "type", "veth", "peer", "name", instance.hubLink, "netns", hub),
    ip("addr", "add", `${instance.rootSide.ipv4}/30`, "dev", instance.rootLink),
    ip("addr", "add", `${instance.rootSide.ipv6}/64`, "dev", instance.rootLink, "nodad"),
    ip("link", "set", instance.rootLink, "up"),
    ip("-n", hub, "addr", "add", `${instance.hubSide.ipv4}/30`, "dev", instance.hubLink),
    ip("-n", hub, "addr", "add", `${instance.hubSide.ipv6}/64`, "dev", instance.hubLink, "nodad"),
    ip("-n", hub, "link", "set", instance.hubLink, "up"),
    ip("route", "add", instance.hostCidrs.ipv4, "via", instance.hubSide.ipv4),
    ip("route", "add", instance.hostCidrs.ipv6, "via", instance.hubSide.ipv6),
    ip("route", "add", `${instance.target.ipv4}/32`, "via", instance.hubSide.ipv4),
    ip("route", "add", `${instance.target.ipv6}/128`, "via", instance.hubSide.ipv6),
  ];
  for (const argv of steps) await runChecked(argv, owner, "create hub");
  await setNetnsSysctl(hub, "net.ipv4.ip_forward", "1", owner);
  await setNetnsSysctl(hub, "net.ipv6.conf.all.forwarding", "1", owner);
}

/** Where the target server writes its output (its connections, see target-server.ts). */
export const targetLogPath = (instance: Instance) => join(instance.stateDir, "target.log");

/** The instance's target server processes, found by what they run. */
export function targetServers(instance: Instance) {
  return processesWhere((argv) => argv.some((arg) => arg.endsWith("target-server.js")) && argv.includes(instance.target.ipv6));
}

/** Starts the target's TCP service in the hub (detached) unless its recorded pid still runs; returns the pid. */
export async function ensureTarget(instance: Instance, recordedPid: number | undefined): Promise<number> {
  // A recorded pid counts only while it is still our server: after a crash the number may be another process's.
  const running = targetServers(instance);
  if (recordedPid !== undefined && running.some((process) => process.pid === recordedPid)) return recordedPid;
  const logPath = targetLogPath(instance);
  const logFd = openSync(logPath, "a");
  const child = spawn(
    "ip",
    ["netns", "exec", instance.hubNetns, process.execPath, join(__dirname, "target-server.js"), String(instance.target.ipv6TcpPort), instance.target.ipv6, instance.target.ipv4],
    { detached: true, stdio: ["ignore", logFd, logFd] },
  );
  child.unref();
  const pid = child.pid;
  if (pid === undefined) throw new LabError("could not start the target server", "", { host: instance.name, step: "start target" });
  await waitFor(() => tcpAnswers(instance.target.ipv6, instance.target.ipv6TcpPort).then((ok) => (ok ? true : undefined)), {
    host: instance.name,
    step: `target [${instance.target.ipv6}]:${instance.target.ipv6TcpPort} listening`,
    timeoutMs: 10_000,
    evidence: () => run(["tail", "-n", "20", logPath]).then((result) => result.stdout.split("\n")),
  });
  return pid;
}

function tcpAnswers(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: 1000 });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
    socket.once("timeout", () => {
      socket.destroy();
      resolve(false);
    });
  });
}

/** The host's netns with `eth0` on the hub bridge, its addresses and default routes via the hub. */
export async function addHostNetwork(instance: Instance, host: HostNaming): Promise<void> {
  const peer = `${host.hubPort}p`;
  const steps: string[][] = [
    ip("netns", "add", host.netns),
    ip("-n", host.netns, "link", "set", "lo", "up"),
    ip("link", "add", host.hubPort, "netns", instance.hubNetns, "type", "veth", "peer", "name", peer, "netns", host.netns),
    ip("-n", instance.hubNetns, "link", "set", host.hubPort, "master", instance.bridge, "up"),
    ip("-n", host.netns, "link", "set", peer, "name", "eth0"),
    ip("-n", host.netns, "addr", "add", `${host.ipv4}/24`, "dev", "eth0"),
    ip("-n", host.netns, "addr", "add", `${host.ipv6}/64`, "dev", "eth0", "nodad"),
    ip("-n", host.netns, "link", "set", "eth0", "up"),
    ip("-n", host.netns, "route", "add", "default", "via", instance.gateway.ipv4),
    ip("-n", host.netns, "-6", "route", "add", "default", "via", instance.gateway.ipv6),
  ];
  for (const argv of steps) await runChecked(argv, host.name, "create host network");
}

/** Deletes every netns of the instance (their veths go with them) and the root link (its routes go with it). */
export async function removeInstanceNetwork(instance: Instance): Promise<void> {
  // The root end first (its peer in the hub goes with it): after `ip netns delete` the kernel removes a namespace's
  // links asynchronously, so the root end may vanish between a check and a delete. Absent is what we want.
  // An instance that never claimed its subnet never made links: names of that number may belong to another instance.
  const rootLink = instance.subnetClaimed ? await run(ip("link", "delete", instance.rootLink)) : null;
  if (rootLink && rootLink.exitCode !== 0 && !/Cannot find device/.test(rootLink.stderr)) {
    await runChecked(ip("link", "delete", instance.rootLink), instance.name, "delete root link");
  }
  for (const netns of await labNetnsList(instance)) await runChecked(ip("netns", "delete", netns), instance.name, "delete netns");
}

export interface LinkImpairment {
  delayMs?: number;
  lossPercent?: number;
}

/**
 * tc netem on both ends of the host's link, so each direction gets the delay and the loss. Kernels without the
 * netem qdisc (no modules on this kind of machine) still get loss: nftables drops at random on each end's ingress.
 */
export async function setLinkImpairment(instance: Instance, host: HostNaming, impairment: LinkImpairment): Promise<void> {
  const netem = ["netem"];
  if (impairment.delayMs !== undefined) netem.push("delay", `${impairment.delayMs}ms`);
  if (impairment.lossPercent !== undefined) netem.push("loss", `${impairment.lossPercent}%`);
  for (const [netns, link] of linkEnds(instance, host)) {
    const command = ["tc", "-n", netns, "qdisc", "replace", "dev", link, "root", ...netem];
    const result = await run(command);
    if (result.exitCode === 0) continue;
    const noNetem = /unknown/i.test(result.stderr);
    if (noNetem && impairment.delayMs === undefined && impairment.lossPercent !== undefined) {
      await dropAtRandom(netns, link, impairment.lossPercent, host.name);
      continue;
    }
    throw new LabError(
      "tc netem failed",
      noNetem ? "this kernel has no netem qdisc (sch_netem): delay needs a kernel with it (loss alone works through nftables)" : "",
      { host: host.name, step: "set link impairment", command: command.join(" "), exitCode: result.exitCode, evidence: result.stderr.split("\n") },
    );
  }
}

const LOSS_TABLE = "rdl_loss";

async function dropAtRandom(netns: string, link: string, lossPercent: number, hostName: string): Promise<void> {
  await run(["ip", "netns", "exec", netns, "nft", "delete", "table", "netdev", LOSS_TABLE]);
  const ruleset = `table netdev ${LOSS_TABLE} {\n chain ingress {\n  type filter hook ingress device "${link}" priority 0;\n  numgen random mod 100 < ${Math.round(lossPercent)} drop\n }\n}\n`;
  await runChecked(["ip", "netns", "exec", netns, "nft", "-f", "-"], hostName, "set link loss (nftables)", { input: ruleset });
}

export async function clearLinkImpairment(instance: Instance, host: HostNaming): Promise<void> {
  for (const [netns, link] of linkEnds(instance, host)) {
    // Deleting the root qdisc restores the default; "no qdisc" / "no such table" errors mean there was nothing to clear.
    await run(["tc", "-n", netns, "qdisc", "del", "dev", link, "root"]);
    await run(["ip", "netns", "exec", netns, "nft", "delete", "table", "netdev", LOSS_TABLE]);
  }
}

const linkEnds = (instance: Instance, host: HostNaming): [string, string][] => [
  [instance.hubNetns, host.hubPort],
  [host.netns, "eth0"],
];

/** Deletes one host's netns; its veth (and the hub end) go with it. Absent is what we want. */
export async function removeHostNetwork(host: HostNaming): Promise<void> {
  if (await netnsExists(host.netns)) await runChecked(ip("netns", "delete", host.netns), host.name, "delete host netns");
}
