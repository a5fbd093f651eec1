import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runChecked } from "./exec";
import { bootHost, hostExecIn, publicView, setPingGroupRange as applyPingGroupRange, userExecIn, waitForDocker, waitForSsh, type HostRecord, type LabHost, type PingGroupRange } from "./host";
import { claimSubnet, currentInstance, hostNaming, type Instance } from "./instance";
import { LabError } from "./lab-error";
import {
  clearLinkImpairment as clearImpairment,
  ensureHub,
  ensureTarget,
  removeInstanceNetwork,
  setLinkImpairment as applyImpairment,
  targetServers,
  type LinkImpairment,
} from "./network";
import { assertPrerequisites, ensureInotifyInstances } from "./prerequisites";
import { ensureRootfs, type Profile } from "./rootfs";
import { childrenOf, killAndWait, processesWhere, unmountUnder } from "./system";

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
  profile?: Profile;
  docker?: boolean;
  pingGroupRange?: PingGroupRange;
}

/**
 * Boots `hosts` more hosts (default 1) of one profile, in parallel, adding them to the instance named by
 * `RDL_LAB`; builds the profile's root file system first when it is not cached. Returns the new hosts.
 */
export async function labUp(options: LabUpOptions = {}): Promise<LabHost[]> {
  assertPrerequisites();
  ensureInotifyInstances(log);
  const profile = options.profile ?? "trixie";
  const docker = options.docker ?? true;
  const count = options.hosts ?? 1;
  const unclaimed = currentInstance();
  mkdirSync(unclaimed.stateDir, { recursive: true, mode: 0o700 });
  const instance = claimSubnet(unclaimed);
  const rootfs = await ensureRootfs(profile, log);
  if (!existsSync(instance.privateKeyPath)) {
    await runChecked(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", `rdl-${instance.name}`, "-f", instance.privateKeyPath], instance.name, "generate lab SSH key");
  }
  const state = readState(instance);
  await ensureHub(instance);
  state.targetPid = await ensureTarget(instance, state.targetPid);
  writeState(instance, state);

  const firstIndex = Math.max(0, ...state.hosts.map((host) => host.index)) + 1;
  const indexes = Array.from({ length: count }, (_, offset) => firstIndex + offset);
  const started = Date.now();
  const boots = await Promise.allSettled(
    indexes.map((index) => bootHost(instance, hostNaming(instance, index), index, { profile, rootfs, docker, pingGroupRange: options.pingGroupRange ?? "open", log })),
  );
  const booted = boots.flatMap((boot) => (boot.status === "fulfilled" ? [boot.value] : []));
  state.hosts.push(...booted);
  writeState(instance, state);
  log(`${booted.length} of ${count} ${profile} host(s)${docker ? " with Docker" : ""} up in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  const failure = boots.find((boot): boot is PromiseRejectedResult => boot.status === "rejected");
  if (failure) throw failure.reason;
  return booted.map(publicView);
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
