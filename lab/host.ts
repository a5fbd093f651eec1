import { randomUUID } from "node:crypto";
import { spawn } from "node:child_process";
import { appendFileSync, chmodSync, chownSync, copyFileSync, existsSync, lchownSync, mkdirSync, openSync, readFileSync, renameSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { lastLines, run, runChecked, waitFor } from "./exec";
import { HOST_UID, HOST_USER, type HostNaming, type Instance } from "./instance";
import { LabError } from "./lab-error";
import { addHostNetwork, setNetnsSysctl } from "./network";
import { BUSYBOX_IMAGE, BUSYBOX_IMAGE_TAR, DOCKER_CONTRIB, UNIFIED_CGROUP, type Profile } from "./rootfs";
import { cgroup2Mount, childrenOf, isGone, removeCgroupTree } from "./system";

export type PingGroupRange = "open" | "closed";
const PING_GROUP_RANGE: Record<PingGroupRange, string> = { open: "0 2147483647", closed: "1 0" };

// On an idle machine; waits scale with the load (see waitFor).
const SSH_READY_TIMEOUT_MS = 60_000;
const DOCKER_READY_TIMEOUT_MS = 120_000;
const USER_HOME = `/home/${HOST_USER}`;
const RUNTIME_DIR = `/run/user/${HOST_UID}`;
const DOCKER_DATA = `${USER_HOME}/.local/share/docker`;

/** What the tests, the demo and the CLI see of a host (`status --json` prints exactly this). */
export interface LabHost {
  name: string;
  profile: Profile;
  address: string;
  port: number;
  user: string;
  privateKeyPath: string;
  /** The host's sshd key as an OpenSSH public key line (`ssh-ed25519 AAAA…`). */
  hostPublicKey: string;
  target: { ipv6: string; ipv6TcpPort: number; ipv4: string };
  docker: boolean;
  pingGroupRange: PingGroupRange;
  /** The RootlessKit version the lab built and installed over the distribution's, if any (`up --rootlesskit`). */
  rootlesskitBuild?: string;
}

/** A host as the state file records it: the public shape plus what the lab needs to reach it. */
export interface HostRecord extends LabHost {
  index: number;
  netns: string;
  nspawnPid: number;
}

export interface BootOptions {
  profile: Profile;
  rootfs: string;
  docker: boolean;
  pingGroupRange: PingGroupRange;
  /** A RootlessKit build (`ensureRootlessKit`) installed in this host only, as the `rootlesskit` the unit runs. */
  rootlesskit?: { version: string; dir: string };
  log: (line: string) => void;
}

export function publicView(record: HostRecord): LabHost {
  const { name, profile, address, port, user, privateKeyPath, hostPublicKey, target, docker, pingGroupRange, rootlesskitBuild } = record;
  return { name, profile, address, port, user, privateKeyPath, hostPublicKey, target, docker, pingGroupRange, ...(rootlesskitBuild ? { rootlesskitBuild } : {}) };
}

/** Boots one host from the shared tree and waits until SSH (and Docker, when on) answer. */
export async function bootHost(instance: Instance, host: HostNaming, index: number, options: BootOptions): Promise<HostRecord> {
  const started = Date.now();
  for (const dir of [host.rootDir, host.upperDir, host.workDir, host.dockerDataDir]) mkdirSync(dir, { recursive: true });
  // overlay2 cannot stack on the overlay root, so Docker's data is a real directory bound in.
  chownSync(host.dockerDataDir, HOST_UID, HOST_UID);
  await runChecked(
    ["mount", "-t", "overlay", "overlay", "-o", `lowerdir=${options.rootfs},upperdir=${host.upperDir},workdir=${host.workDir}`, host.rootDir],
    host.name,
    "mount overlay",
  );
  const uuid = randomUUID();
  const hostPublicKey = await writeIdentity(instance, host, uuid, options.docker);
  if (options.rootlesskit) installRootlessKit(host.rootDir, options.rootlesskit.dir);
  appendFileSync(instance.knownHostsPath, `${host.ipv4} ${hostPublicKey}\n`);
  await addHostNetwork(instance, host);

  const logFd = openSync(host.consoleLog, "a");
  const cgroup = UNIFIED_CGROUP[options.profile] ? ownCgroup(instance, host) : null;
  const nspawnArgv = [
    "systemd-nspawn",
    "--boot", `--directory=${host.rootDir}`, `--machine=${host.name}`, "--register=no", "--keep-unit",
    // Without these, runc cannot create the session keyring of a container.
    "--system-call-filter=add_key keyctl request_key",
    `--network-namespace-path=/run/netns/${host.netns}`,
    `--uuid=${uuid}`,
    `--bind=${host.dockerDataDir}:${DOCKER_DATA}`,
    "--console=read-only",
  ];
  // A cgroup v2 host gets a cgroup of its own, entered before nspawn starts: nspawn otherwise puts every such host in
  // the same `/payload`, where one host's processes keep another host's units from ever stopping.
  const nspawn = spawn(
    cgroup ? "/bin/sh" : nspawnArgv[0],
    cgroup ? ["-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', cgroup, ...nspawnArgv] : nspawnArgv.slice(1),
    // Writable /proc/sys/net: rootless dockerd enables forwarding inside its namespace.
    {
      detached: true,
      stdio: ["ignore", logFd, logFd],
      env: {
        ...process.env,
        SYSTEMD_NSPAWN_API_VFS_WRITABLE: "network",
        ...(UNIFIED_CGROUP[options.profile] ? { SYSTEMD_NSPAWN_UNIFIED_HIERARCHY: "1" } : {}),
      },
    },
  );
  nspawn.unref();
  if (nspawn.pid === undefined) throw new LabError("systemd-nspawn did not start", "", { host: host.name, step: "boot" });
  const record: HostRecord = {
    name: host.name,
    profile: options.profile,
    address: host.ipv4,
    port: 22,
    user: HOST_USER,
    privateKeyPath: instance.privateKeyPath,
    hostPublicKey,
    target: instance.target,
    docker: options.docker,
    pingGroupRange: options.pingGroupRange,
    ...(options.rootlesskit ? { rootlesskitBuild: options.rootlesskit.version } : {}),
    index,
    netns: host.netns,
    nspawnPid: nspawn.pid,
  };

  await waitForSsh(instance, record, host.consoleLog);
  const sshReady = Date.now();
  // After boot, so that no sysctl.d file inside the host overrides it.
  await setPingGroupRange(record, options.pingGroupRange);
  let timing = `${host.name}: boot to SSH-ready ${seconds(sshReady - started)}`;
  if (options.docker) {
    await waitForDocker(record, host.consoleLog);
    timing += `, Docker ready ${seconds(Date.now() - started)}`;
  }
  options.log(timing);
  return record;
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** The host's own cgroup v2 directory (created empty), under the instance's. */
function ownCgroup(instance: Instance, host: HostNaming): string {
  const mount = cgroup2Mount();
  if (mount === null) {
    throw new LabError("this machine has no cgroup v2 hierarchy", "systemd ≥ 258 (forky) needs one: mount cgroup2 (e.g. on /sys/fs/cgroup/unified)", { host: host.name, step: "boot" });
  }
  const path = join(instanceCgroup(mount, instance), host.name);
  removeCgroupTree(path);
  mkdirSync(path, { recursive: true });
  return path;
}

export function instanceCgroup(mount: string, instance: Instance): string {
  return join(mount, "pulumi-rootless-docker-lab", instance.name);
}

/** Hostname, machine-id, sshd host key, authorized key and Docker's enablement, written into the host's overlay. */
async function writeIdentity(instance: Instance, host: HostNaming, uuid: string, docker: boolean): Promise<string> {
  const root = host.rootDir;
  writeFileSync(join(root, "etc/hostname"), `${host.name}\n`);
  writeFileSync(join(root, "etc/machine-id"), `${uuid.replace(/-/g, "")}\n`);
  const hostKey = join(root, "etc/ssh/ssh_host_ed25519_key");
  await runChecked(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", host.name, "-f", hostKey], host.name, "generate sshd host key");
  const authorizedKeys = join(root, USER_HOME, ".ssh/authorized_keys");
  writeFileSync(authorizedKeys, readFileSync(`${instance.privateKeyPath}.pub`), { mode: 0o600 });
  chownSync(authorizedKeys, HOST_UID, HOST_UID);
  if (docker) {
    const wanted = join(root, USER_HOME, ".config/systemd/user/default.target.wants/docker.service");
    symlinkSync("../docker.service", wanted);
    lchownSync(wanted, HOST_UID, HOST_UID);
  }
  // OpenSSH ≥ 9.8 (it split out sshd-session) penalizes a source whose connections end before authenticating; every
  // readiness probe comes from the same machine address, so one probe cut short under load would lock the next out
  // ("kex_exchange_identification: Connection closed by remote host").
  if (existsSync(join(root, "usr/lib/openssh/sshd-session"))) writeFileSync(join(root, "etc/ssh/sshd_config.d/lab-probes.conf"), "PerSourcePenalties no\n");
  const [type, key] = readFileSync(`${hostKey}.pub`, "utf8").trim().split(/\s+/);
  return `${type} ${key}`;
}

function sshArgv(instance: Instance, record: LabHost, command: string): string[] {
  return [
    "ssh", "-F", "/dev/null", "-i", instance.privateKeyPath,
    "-o", "StrictHostKeyChecking=yes", "-o", `UserKnownHostsFile=${instance.knownHostsPath}`, "-o", "GlobalKnownHostsFile=/dev/null",
    "-o", "BatchMode=yes", "-o", "ConnectTimeout=3", "-p", String(record.port),
    `${record.user}@${record.address}`, command,
  ];
}

/**
 * Replaces the host's `rootlesskit` and `rootlessctl` (on the unit's PATH) with a build, in the host's own overlay so the
 * shared tree is untouched. Each file is renamed into place, so a running host (an in-place upgrade) never sees half a file
 * and the running binary stays intact.
 */
export function installRootlessKit(rootDir: string, buildDir: string): void {
  for (const name of ["rootlesskit", "rootlessctl"]) installExecutable(rootDir, join(buildDir, name), `/usr/bin/${name}`);
}

/** Docker's scripts and daemon where Debian's docker.io has them (the unit's ExecStart, dockerd on its PATH). */
export const DOCKER_FILES = { script: `${DOCKER_CONTRIB}/dockerd-rootless.sh`, dockerd: "/usr/sbin/dockerd", dockerProxy: "/usr/sbin/docker-proxy" } as const;

/**
 * Puts `from` at `path` in the host's own overlay (the shared tree is untouched), executable and renamed into place: a
 * running host never sees half a file, and a running program keeps its old one until it restarts.
 */
export function installExecutable(rootDir: string, from: string, path: string): void {
  const target = join(rootDir, path.slice(1));
  copyFileSync(from, `${target}.lab-new`);
  chmodSync(`${target}.lab-new`, 0o755);
  renameSync(`${target}.lab-new`, target);
}

/**
 * SSH-ready is judged by what the host reports: its systemd says sshd is active (read through the host's namespaces,
 * no network), then a real login with the lab key against the lab's known_hosts succeeds. Until sshd is active no
 * connection is tried, so a loaded machine is not loaded further by logins that cannot succeed yet.
 */
export async function waitForSsh(instance: Instance, record: HostRecord, consoleLog: string): Promise<void> {
  let sshd = "(not read yet)";
  let lastAttempt = "(none: sshd was never active)";
  await waitFor(
    async () => {
      assertRunning(record, consoleLog, "wait for sshd");
      sshd = await sshdState(record);
      if (!/\bactive\b/.test(sshd)) return undefined;
      // Long enough for a handshake on a loaded machine: a probe cut short is what sshd penalizes.
      const result = await run(sshArgv(instance, record, "true"), { timeoutMs: 30_000 });
      lastAttempt = result.exitCode === 0 ? "ok" : `exit ${result.exitCode}: ${result.stderr.trim()}`;
      return result.exitCode === 0 ? true : undefined;
    },
    {
      host: record.name,
      step: `sshd answering on ${record.address}:${record.port}`,
      timeoutMs: SSH_READY_TIMEOUT_MS,
      intervalMs: 500,
      scaleWithLoad: true,
      // The most telling lines last: the error keeps the last 20.
      evidence: async () => [
        "last console lines:",
        ...consoleTail(consoleLog).slice(-6),
        "sshd journal:",
        ...(await quietly(record, "journalctl -u ssh.service -n 6 --no-pager -o cat")),
        `system state: ${(await quietly(record, "systemctl is-system-running; systemctl list-jobs --no-legend | head -n 3")).join(" | ")}`,
        `sshd units (ssh.service, ssh.socket): ${sshd}`,
        `last ssh attempt: ${lastAttempt}`,
      ],
    },
  );
}

/** `ActiveState/SubState` of ssh.service and ssh.socket as the host's systemd reports them (Debian may use either). */
async function sshdState(record: HostRecord): Promise<string> {
  if (childrenOf(record.nspawnPid).length === 0) return "host init not started yet";
  const result = await hostExecIn(record, "for unit in ssh.service ssh.socket; do systemctl show \"$unit\" -p ActiveState -p SubState --value | paste -sd/; done | paste -sd,");
  return result.exitCode === 0 ? result.stdout.trim() : `systemctl failed (${result.exitCode}): ${lastLines(result.stderr, 2).join(" ")}`;
}

/** Output lines of a diagnostic command in the host; its failure is evidence too, never an error. */
async function quietly(record: HostRecord, command: string): Promise<string[]> {
  try {
    const result = await hostExecIn(record, command);
    return lastLines(result.stdout + result.stderr, 12);
  } catch (error) {
    return [`(could not run: ${error instanceof Error ? error.message : String(error)})`];
  }
}

/** Docker-ready means `docker info` as the user answers and the busybox image is imported. */
export async function waitForDocker(record: HostRecord, consoleLog: string): Promise<void> {
  let lastAttempt = "";
  await waitFor(
    async () => {
      assertRunning(record, consoleLog, "wait for Docker");
      const result = await userExecIn(record, "docker info --format '{{.ServerVersion}}'");
      lastAttempt = (result.stderr + result.stdout).trim();
      // `docker info --format` exits 0 even when the daemon is unreachable; only a server version counts.
      return result.exitCode === 0 && result.stdout.trim() !== "" ? true : undefined;
    },
    {
      host: record.name,
      step: "rootless Docker answering `docker info`",
      timeoutMs: DOCKER_READY_TIMEOUT_MS,
      intervalMs: 500,
      scaleWithLoad: true,
      evidence: async () => [
        `last docker info: ${lastAttempt}`,
        ...(await userExecIn(record, "systemctl --user status docker --no-pager -n 15 2>&1")).stdout.split("\n"),
      ],
    },
  );
  const imported = await userExecIn(record, `docker image inspect ${BUSYBOX_IMAGE} >/dev/null 2>&1 || docker import ${BUSYBOX_IMAGE_TAR} ${BUSYBOX_IMAGE}`);
  if (imported.exitCode !== 0) {
    throw new LabError("importing the busybox image failed", "", {
      host: record.name,
      step: "import image",
      command: `docker import ${BUSYBOX_IMAGE_TAR} ${BUSYBOX_IMAGE}`,
      exitCode: imported.exitCode,
      evidence: (imported.stderr + imported.stdout).split("\n"),
    });
  }
}

function assertRunning(record: HostRecord, consoleLog: string, step: string): void {
  if (isGone(record.nspawnPid)) {
    throw new LabError("systemd-nspawn exited", "read the console log", { host: record.name, step, evidence: [`console log ${consoleLog}:`, ...consoleTail(consoleLog)] });
  }
}

function consoleTail(consoleLog: string): string[] {
  try {
    return lastLines(readFileSync(consoleLog, "utf8"), 12);
  } catch {
    return ["(no console log)"];
  }
}

export function setPingGroupRange(record: HostRecord, range: PingGroupRange): Promise<unknown> {
  record.pingGroupRange = range;
  return setNetnsSysctl(record.netns, "net.ipv4.ping_group_range", PING_GROUP_RANGE[range], record.name);
}

/** The host's PID 1: the child of systemd-nspawn. */
function containerInit(record: HostRecord): number {
  const init = childrenOf(record.nspawnPid)[0];
  if (init === undefined || isGone(record.nspawnPid)) {
    throw new LabError("the host is not running", "run `npm run lab -- status`, or `down` and `up` again", {
      host: record.name,
      step: "enter host",
      evidence: [`systemd-nspawn pid ${record.nspawnPid} has no live child`],
    });
  }
  return init;
}

const EXEC_TIMEOUT_MS = 5 * 60_000;
const PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** Runs a shell command as root inside the host's namespaces, with a clean environment. */
export function hostExecIn(record: HostRecord, command: string) {
  return run(
    ["nsenter", "--all", "-t", String(containerInit(record)), "--", "/usr/bin/env", "-i", "-C", "/root", PATH, "HOME=/root", "/bin/sh", "-c", command],
    { timeoutMs: EXEC_TIMEOUT_MS },
  );
}

/** Runs a shell command as the user, set up so that `systemctl --user` and `docker` reach the user's daemons. */
export function userExecIn(record: HostRecord, command: string) {
  return run(
    [
      "nsenter", "--all", "-t", String(containerInit(record)), "--",
      "/usr/bin/setpriv", `--reuid=${HOST_UID}`, `--regid=${HOST_UID}`, "--init-groups",
      "/usr/bin/env", "-i", "-C", USER_HOME, PATH, `HOME=${USER_HOME}`, `USER=${HOST_USER}`, `LOGNAME=${HOST_USER}`,
      `XDG_RUNTIME_DIR=${RUNTIME_DIR}`, `DBUS_SESSION_BUS_ADDRESS=unix:path=${RUNTIME_DIR}/bus`, `DOCKER_HOST=unix://${RUNTIME_DIR}/docker.sock`,
      "/bin/sh", "-c", command,
    ],
    { timeoutMs: EXEC_TIMEOUT_MS },
  );
}
