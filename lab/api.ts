import { withContextLine } from "../provider/errors/base";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runChecked } from "./exec";
import { availableParallelism } from "node:os";
import {
  bootHost, DOCKER_FILES, hostExecIn, installExecutable, installRootlessKit, instanceCgroup, publicView, setPingGroupRange as applyPingGroupRange, userExecIn, waitForDocker, waitForSsh,
  type BootOptions, type HostRecord, type LabHost, type PingGroupRange,
} from "./host";
import { claimSubnet, currentInstance, hostNaming, type Instance } from "./instance";
import { LabError } from "./lab-error";
import {
  clearLinkImpairment as clearImpairment,
  ensureHub,
  ensureTarget,
  removeHostNetwork,
  removeInstanceNetwork,
  setLinkImpairment as applyImpairment,
  targetLogPath,
  targetServers,
  type LinkImpairment,
} from "./network";
import { assertPrerequisites, ensureKernelLimits } from "./prerequisites";
import { ensureRootfs, type Profile } from "./rootfs";
import { ensureMobyDockerd, ensureRootlessKit, ensureRootlessScript, parseMobyVersion, parseRootlessKitVersion } from "./tools";
import { cgroup2Mount, childrenOf, killAndWait, processesWhere, removeCgroupTree, unmountUnder } from "./system";

export type { LabHost, PingGroupRange, Profile, LinkImpairment };
export type { CommandResult } from "./exec";

/** The drop-in `breakDocker` writes: sorts after every other drop-in of docker.service, so it wins. */
export const DOCKER_FAULT_DROPIN = "/home/dev/.config/systemd/user/docker.service.d/zz-lab-fault.conf";

interface LabState {
  hosts: HostRecord[];
  targetPid?: number;
}

const log = (line: string) => process.stderr.write(`[lab ${currentInstance().name}] ${line}\n`);

function readState(instance: Instance): LabState {
  if (!existsSync(instance.statePath)) return { hosts: [] };
  return JSON.parse(readFileSync(instance.statePath, "utf8")) as LabState;
}

function writeState(instance: Instance, state: LabState): void {
  const temporary = `${instance.statePath}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(state, null, 2)}\n`);
  renameSync(temporary, instance.statePath);
  writeFileSync(instance.knownHostsPath, state.hosts.map((host) => `${host.address} ${host.hostPublicKey}\n`).join(""));
}

export interface LabUpOptions {
  hosts?: number;
  /** One profile, or several: `hosts` hosts of each, all in this instance. */
  profile?: Profile | Profile[];
  docker?: boolean;
  pingGroupRange?: PingGroupRange;
  /** A RootlessKit release (`2.3.4`, `3.3.0`) built from the Go module proxy and installed in each new host. */
  rootlesskit?: string;
}

/** Builds what hosts of these profiles with these RootlessKit releases and moby scripts need (cached by version), booting nothing. */
export async function labPrepare(profiles: Profile[], rootlesskits: string[], mobys: string[] = []): Promise<void> {
  for (const profile of profiles) await ensureRootfs(profile, log);
  for (const version of rootlesskits) await ensureRootlessKit(parseRootlessKitVersion(version), log);
  for (const version of mobys) {
    await ensureRootlessScript(parseMobyVersion(version), log);
    await ensureMobyDockerd(parseMobyVersion(version), log);
  }
}

/** Hosts booting at once: beyond a few per core, boots only slow each other down until every wait runs out. */
function bootsInFlight(): number {
  return Number(process.env.RDL_LAB_BOOTS_IN_FLIGHT ?? 0) || 4 * availableParallelism();
}

/**
 * Boots `hosts` more hosts (default 1) of each profile, at most bootsInFlight() at a time, adding them to the instance
 * named by `RDL_LAB`; builds what is not cached first (a profile's root file system, a RootlessKit version). A host
 * that fails to boot is removed and booted once more. Returns the new hosts.
 */
export async function labUp(options: LabUpOptions = {}): Promise<LabHost[]> {
  assertPrerequisites();
  ensureKernelLimits(log);
  const profiles = [options.profile ?? "trixie"].flat();
  const docker = options.docker ?? true;
  const count = options.hosts ?? 1;
  const unclaimed = currentInstance();
  mkdirSync(unclaimed.stateDir, { recursive: true, mode: 0o700 });
  const instance = claimSubnet(unclaimed);
  const rootfsOf = new Map<Profile, string>();
  for (const profile of profiles) rootfsOf.set(profile, await ensureRootfs(profile, log));
  const rootlesskit = options.rootlesskit === undefined ? undefined : parseRootlessKitVersion(options.rootlesskit);
  const build = rootlesskit === undefined ? undefined : { version: rootlesskit, dir: await ensureRootlessKit(rootlesskit, log) };
  if (!existsSync(instance.privateKeyPath)) {
    await runChecked(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", `rdl-${instance.name}`, "-f", instance.privateKeyPath], instance.name, "generate lab SSH key");
  }
  const state = readState(instance);
  await ensureHub(instance);
  state.targetPid = await ensureTarget(instance, state.targetPid);
  writeState(instance, state);

  const firstIndex = Math.max(0, ...state.hosts.map((host) => host.index)) + 1;
  const plans = profiles.flatMap((profile) => Array.from({ length: count }, () => profile)).map((profile, offset) => ({
    index: firstIndex + offset,
    options: { profile, rootfs: rootfsOf.get(profile) as string, docker, pingGroupRange: options.pingGroupRange ?? "open", rootlesskit: build, log },
  }));
  const started = Date.now();
  const boots = await inBatches(plans, bootsInFlight(), (plan) => bootWithRetry(instance, plan.index, plan.options));
  const booted = boots.flatMap((boot) => (boot.status === "fulfilled" ? [boot.value] : []));
  state.hosts.push(...booted);
  writeState(instance, state);
  const what = `${profiles.join("+")} host(s)${docker ? " with Docker" : ""}${build ? ` and RootlessKit ${build.version}` : ""}`;
  log(`${booted.length} of ${plans.length} ${what} up in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  const failure = boots.find((boot): boot is PromiseRejectedResult => boot.status === "rejected");
  if (failure) throw failure.reason;
  return booted.map(publicView);
}

/** Runs `task` on every item with at most `limit` running at once; settles like Promise.allSettled, in order. */
async function inBatches<T, R>(items: T[], limit: number, task: (item: T) => Promise<R>): Promise<PromiseSettledResult<R>[]> {
  const results: PromiseSettledResult<R>[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await task(items[index]).then(
        (value) => ({ status: "fulfilled" as const, value }),
        (reason: unknown) => ({ status: "rejected" as const, reason }),
      );
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** A host that failed to boot (a wait ran out on a loaded machine) is torn down and booted again, once. */
async function bootWithRetry(instance: Instance, index: number, options: BootOptions): Promise<HostRecord> {
  const naming = hostNaming(instance, index);
  try {
    return await bootHost(instance, naming, index, options);
  } catch (first) {
    log(`${naming.name}: boot failed, booting it once more: ${first instanceof Error ? first.message : String(first)}`);
    await removeLabHost(instance, index);
    try {
      return await bootHost(instance, naming, index, options);
    } catch (second) {
      if (second instanceof Error && first instanceof Error) withContextLine(second, `(the first boot had failed too: ${first.message.split("\n")[0]})`);
      throw second;
    }
  }
}

/** Stops one host and removes its mounts, netns, known_hosts line and files (a failed boot, before its retry). */
async function removeLabHost(instance: Instance, index: number): Promise<void> {
  const naming = hostNaming(instance, index);
  const nspawns = processesWhere((argv) => argv[0].endsWith("systemd-nspawn") && argv.includes(`--directory=${naming.rootDir}`));
  const pids = new Set(nspawns.map((process) => process.pid));
  for (const pid of [...pids]) for (const child of childrenOf(pid)) pids.add(child);
  await killAndWait([...pids], naming.name);
  await unmountUnder(naming.dir, naming.name);
  await removeHostNetwork(naming);
  const cgroups = cgroup2Mount();
  if (cgroups !== null) removeCgroupTree(join(instanceCgroup(cgroups, instance), naming.name));
  if (existsSync(instance.knownHostsPath)) {
    const lines = readFileSync(instance.knownHostsPath, "utf8").split("\n").filter((line) => line !== "" && !line.startsWith(`${naming.ipv4} `));
    writeFileSync(instance.knownHostsPath, lines.map((line) => `${line}\n`).join(""));
  }
  rmSync(naming.dir, { recursive: true, force: true });
}

export function labStatus(): LabHost[] {
  return readState(currentInstance()).hosts.map(publicView);
}

/**
 * Stops every host of the instance and removes its mounts, netns, links and state. Finds leftovers by naming
 * convention and /proc/mounts as well as from the state file, so it also cleans up after a crash.
 */
export async function labDown(): Promise<void> {
  const instance = currentInstance();
  // Processes are found by what they run, never by PIDs recorded in the state file: after a crash or a reboot
  // those numbers may belong to unrelated processes.
  const hostsDir = join(instance.stateDir, "hosts") + "/";
  const nspawns = processesWhere((argv) => argv[0].endsWith("systemd-nspawn") && argv.some((arg) => arg.startsWith(`--directory=${hostsDir}`)));
  const targets = targetServers(instance);
  const pids = new Set([...nspawns.map((process) => process.pid), ...targets.map((process) => process.pid)]);
  // Killing a host's PID 1 ends its whole PID namespace.
  for (const pid of [...pids]) for (const child of childrenOf(pid)) pids.add(child);
  await killAndWait([...pids], instance.name);
  await unmountUnder(instance.stateDir, instance.name);
  await removeInstanceNetwork(instance);
  const cgroups = cgroup2Mount();
  if (cgroups !== null) removeCgroupTree(instanceCgroup(cgroups, instance));
  rmSync(instance.stateDir, { recursive: true, force: true });
}

function record(name: string): { instance: Instance; state: LabState; host: HostRecord } {
  const instance = currentInstance();
  const state = readState(instance);
  const host = state.hosts.find((candidate) => candidate.name === name);
  if (!host) {
    throw new LabError(`no such lab host in instance "${instance.name}"`, `pick one of: ${state.hosts.map((candidate) => candidate.name).join(", ") || "(none; run up)"}`, {
      host: name,
      step: "find host",
    });
  }
  return { instance, state, host };
}

/** Runs a shell command as root inside the host (through its namespaces, not SSH). Never throws on a non-zero exit. */
export function hostExec(name: string, command: string) {
  return hostExecIn(record(name).host, command);
}

/** Runs a shell command as `dev` inside the host with XDG_RUNTIME_DIR and DOCKER_HOST set. Never throws on a non-zero exit. */
export function userExec(name: string, command: string) {
  return userExecIn(record(name).host, command);
}

async function mustSucceed(name: string, step: string, command: string, as: "root" | "user"): Promise<void> {
  const result = as === "root" ? await hostExec(name, command) : await userExec(name, command);
  if (result.exitCode !== 0) {
    throw new LabError("command failed in the host", "", { host: name, step, command, exitCode: result.exitCode, evidence: (result.stderr + result.stdout).split("\n") });
  }
}

export function stopSshd(name: string): Promise<void> {
  return mustSucceed(name, "stop sshd", "systemctl stop ssh.socket ssh.service", "root");
}

/** Starts sshd and returns once a real SSH login works again. */
export async function startSshd(name: string): Promise<void> {
  await mustSucceed(name, "start sshd", "systemctl start ssh.service", "root");
  const { instance, host } = record(name);
  await waitForSsh(instance, host, hostNaming(instance, host.index).consoleLog);
}

/** Makes docker.service fail to start (a failing `ExecStartPre=` in DOCKER_FAULT_DROPIN) and restarts it, so it is down. */
export async function breakDocker(name: string): Promise<void> {
  await mustSucceed(
    name,
    "break Docker",
    `mkdir -p "$(dirname ${DOCKER_FAULT_DROPIN})" && printf '[Service]\\nExecStartPre=/bin/false\\n' > ${DOCKER_FAULT_DROPIN} && systemctl --user daemon-reload && { systemctl --user restart docker || true; }`,
    "user",
  );
}

/** Removes the fault drop-in, restarts Docker and returns once `docker info` answers. */
export async function fixDocker(name: string): Promise<void> {
  await mustSucceed(
    name,
    "fix Docker",
    `rm -f ${DOCKER_FAULT_DROPIN} && systemctl --user daemon-reload && systemctl --user reset-failed docker; systemctl --user restart docker`,
    "user",
  );
  const { instance, host } = record(name);
  await waitForDocker(host, hostNaming(instance, host.index).consoleLog);
}

/**
 * Makes the lab's IPv6 target unreachable from the host (a blackhole route in the host's netns, where slirp4netns
 * and pasta open their sockets): a verification then fails for real, everything else keeps working.
 */
export async function blockTarget(name: string): Promise<void> {
  const { host } = record(name);
  await runChecked(["ip", "-n", host.netns, "-6", "route", "replace", "blackhole", `${host.target.ipv6}/128`], name, "block the target");
}

export async function unblockTarget(name: string): Promise<void> {
  const { host } = record(name);
  const routes = await runChecked(["ip", "-n", host.netns, "-6", "route", "show", "type", "blackhole", `${host.target.ipv6}/128`], name, "find the target's block");
  if (routes.stdout.trim() !== "") await runChecked(["ip", "-n", host.netns, "-6", "route", "del", "blackhole", `${host.target.ipv6}/128`], name, "unblock the target");
}

/** A TCP connection the instance's target accepted: from which host (null: none of this instance's) and when. */
export interface TargetConnection {
  host: string | null;
  from: string;
  /** CLOCK_MONOTONIC in µs, the clock of the hosts' `ExecMainStartTimestampMonotonic`. */
  atUs: number;
}

/** Every connection the target accepted since the instance came up, oldest first: when verifications reached it. */
export function targetConnections(): TargetConnection[] {
  const instance = currentInstance();
  const path = targetLogPath(instance);
  if (!existsSync(path)) return [];
  const hostOf = new Map(readState(instance).hosts.flatMap((host) => {
    const naming = hostNaming(instance, host.index);
    return [naming.ipv4, naming.ipv6].map((address) => [address, host.name] as const);
  }));
  return readFileSync(path, "utf8").split("\n").flatMap((line) => {
    const match = /^connection from (\S+) at (\d+)$/.exec(line);
    return match ? [{ host: hostOf.get(match[1]) ?? null, from: match[1], atUs: Number(match[2]) }] : [];
  });
}

/** tc netem on both ends of the host's link (each direction gets the delay and the loss). */
export function setLinkImpairment(name: string, impairment: LinkImpairment): Promise<void> {
  const { instance, host } = record(name);
  return applyImpairment(instance, hostNaming(instance, host.index), impairment);
}

export function clearLinkImpairment(name: string): Promise<void> {
  const { instance, host } = record(name);
  return clearImpairment(instance, hostNaming(instance, host.index));
}

/** Sets net.ipv4.ping_group_range in the host's netns: "open" = `0 2147483647`, "closed" = Debian's `1 0`. */
export async function setPingGroupRange(name: string, range: PingGroupRange): Promise<void> {
  const { instance, state, host } = record(name);
  await applyPingGroupRange(host, range);
  writeState(instance, state);
}

/**
 * Swaps a running host's RootlessKit for a build of `version` (an in-place upgrade, as a package upgrade does it): the
 * running daemon keeps the old binary until it restarts. Returns the version the new binary reports.
 */
export async function upgradeRootlessKit(name: string, version: string): Promise<string> {
  const { instance, state, host } = record(name);
  const wanted = parseRootlessKitVersion(version);
  installRootlessKit(hostNaming(instance, host.index).rootDir, await ensureRootlessKit(wanted, log));
  host.rootlesskitBuild = wanted;
  writeState(instance, state);
  const reported = (await hostVersions(name)).rootlesskit;
  if (reported !== wanted) {
    throw new LabError(`the host reports RootlessKit ${reported ?? "(none)"} after the swap`, "", { host: name, step: "upgrade rootlesskit" });
  }
  return reported;
}

/**
 * Makes a running host's unit run moby's dockerd-rootless.sh of `version` (github.com/moby/moby/v2, Docker 29.5's script
 * and later) in place of its own; the running daemon keeps the old script until it restarts. Returns the script's path.
 */
export async function installRootlessScriptOn(name: string, version: string): Promise<string> {
  const { instance, host } = record(name);
  installExecutable(hostNaming(instance, host.index).rootDir, await ensureRootlessScript(parseMobyVersion(version), log), DOCKER_FILES.script);
  return DOCKER_FILES.script;
}

/**
 * Makes a running host's unit run moby's own dockerd and docker-proxy of `version` (built from the module proxy) in
 * place of Debian's, from the daemon's next start: with moby's dockerd-rootless.sh of the same version, Docker 29.5+.
 */
export async function installMobyDockerdOn(name: string, version: string): Promise<string> {
  const { instance, host } = record(name);
  const build = await ensureMobyDockerd(parseMobyVersion(version), log);
  const rootDir = hostNaming(instance, host.index).rootDir;
  installExecutable(rootDir, join(build, "dockerd"), DOCKER_FILES.dockerd);
  installExecutable(rootDir, join(build, "docker-proxy"), DOCKER_FILES.dockerProxy);
  return DOCKER_FILES.dockerd;
}

/** Versions of what a host runs, read from the host's own binaries (`null`: not installed). */
export interface HostVersions {
  rootlesskit: string | null;
  docker: string | null;
  passt: string | null;
  slirp4netns: string | null;
  systemd: string | null;
}

const VERSION_PROBES: Record<keyof HostVersions, { command: string; pattern: RegExp }> = {
  rootlesskit: { command: "rootlesskit --version", pattern: /version (\S+)/ },
  docker: { command: "dockerd --version", pattern: /version ([^,\s]+)/ },
  // pasta prints its version only to a terminal.
  passt: { command: "script -q -c 'pasta --version' /dev/null </dev/null", pattern: /^pasta (\S+)/ },
  slirp4netns: { command: "slirp4netns --version", pattern: /version (\S+)/ },
  systemd: { command: "systemctl --version", pattern: /^systemd (\d+ \([^)]*\)|\d+)/ },
};

export async function hostVersions(name: string): Promise<HostVersions> {
  const keys = Object.keys(VERSION_PROBES) as (keyof HostVersions)[];
  // One exec: each probe's first line, prefixed by its key; a missing binary prints nothing after its key.
  const script = keys.map((key) => `printf '%s\\t%s\\n' ${key} "$(${VERSION_PROBES[key].command} 2>/dev/null | head -n 1)"`).join("; ");
  const result = await hostExec(name, script);
  const lines = new Map(result.stdout.split("\n").map((line) => [line.split("\t")[0], line.slice(line.indexOf("\t") + 1)]));
  return Object.fromEntries(keys.map((key) => [key, VERSION_PROBES[key].pattern.exec(lines.get(key) ?? "")?.[1] ?? null])) as unknown as HostVersions;
}
