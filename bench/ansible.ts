/**
 * Ansible's side of the comparison: `ansible-playbook --check --diff` of bench/ansible/playbook.yml (Debian's
 * ansible-core, pipelining on, forks = hosts, no fact gathering) on the same hosts, each run cold.
 */
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { run, runChecked } from "../lab/exec";
import { currentInstance, hostNaming } from "../lab/instance";
import type { LabHost } from "../lab/api";
import { BenchError } from "./bench-error";
import type { Endpoint } from "./measure";
import { runMeasured } from "./memory";

const ANSIBLE_DIR = join(__dirname, "..", "..", "bench", "ansible");
/** Lab hosts are debootstrap minbase without Python; Ansible modules need one on the target. */
const HOST_PYTHON_DIR = "/opt/bench-python";
const HOST_PYTHON = `${HOST_PYTHON_DIR}/bin/python3.11`;
const MACHINE_PYTHON = "/usr/bin/python3.11";
const MACHINE_STDLIB = "/usr/lib/python3.11";
/** Parts of the standard library no Ansible module imports; left out to keep the copy per host small. */
const STDLIB_LEFT_OUT = ["test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3", "pydoc_data", "config-3.11-*", "site-packages", "dist-packages"];

/**
 * Copies the machine's Python 3.11 (Debian 12: the binary links only libc, libm, libz and libexpat, all present
 * in the lab's Debian 13 tree) with its standard library and compiled .pyc files into each host's overlay.
 */
export async function installPythonOnHosts(hosts: readonly LabHost[], workDir: string): Promise<void> {
  const staged = join(workDir, "python");
  if (!existsSync(staged)) {
    mkdirSync(join(staged, "bin"), { recursive: true });
    mkdirSync(join(staged, "lib"), { recursive: true });
    await runChecked(["cp", MACHINE_PYTHON, join(staged, "bin")], "bench", "stage Python");
    const excludes = STDLIB_LEFT_OUT.map((name) => `--exclude=python3.11/${name}`);
    await runChecked(["sh", "-c", `tar -C "$1" -c ${excludes.join(" ")} python3.11 | tar -C "$2" -x`, "sh", join(MACHINE_STDLIB, ".."), join(staged, "lib")], "bench", "stage Python");
  }
  const instance = currentInstance();
  await Promise.all(
    hosts.map(async (host) => {
      const rootDir = hostNaming(instance, labIndex(host)).rootDir;
      // Written through the machine-side mount of the host's overlay: the host sees it at once.
      await runChecked(["mkdir", "-p", join(rootDir, "opt")], host.name, "install Python for Ansible");
      await runChecked(["cp", "-a", staged, join(rootDir, HOST_PYTHON_DIR)], host.name, "install Python for Ansible");
    }),
  );
}

function labIndex(host: LabHost): number {
  const index = Number(host.name.slice(host.name.lastIndexOf("-") + 1));
  if (!Number.isInteger(index)) throw new BenchError(`lab host name "${host.name}" does not end in its number`, "the lab names hosts INSTANCE-N; was lab/instance.ts changed?", { host: host.name, step: "install Python for Ansible" });
  return index;
}

export interface AnsibleRun {
  wallMs: number;
  /** ssh invocations (each one session with one command: a round trip) per host. */
  roundTripsPerHost: number;
  /** Peak memory of ansible-playbook's process tree (its workers and ssh clients; a ControlPersist master leaves the tree once it detaches). */
  peakRssKiB: number;
}

/**
 * One cold `ansible-playbook --check --diff` over `endpoints`: a fresh ControlPath directory, the ControlPersist
 * masters closed afterwards. `environment` is the drop-in content the provider plans, so both do the same work.
 */
export async function runAnsibleCheck(endpoints: readonly Endpoint[], environment: Record<string, string>, runDir: string): Promise<AnsibleRun> {
  mkdirSync(runDir, { recursive: true });
  const controlDir = join(runDir, "cp");
  mkdirSync(controlDir);
  const sshLog = join(runDir, "ssh-invocations.log");
  const sshWrapper = join(runDir, "ssh");
  // Counts each ssh Ansible starts; everything else goes to the real client unchanged.
  writeFileSync(sshWrapper, `#!/bin/sh\necho "$$" >> '${sshLog}'\nexec /usr/bin/ssh "$@"\n`);
  chmodSync(sshWrapper, 0o755);
  const first = endpoints[0];
  const inventory = readFileSync(join(ANSIBLE_DIR, "inventory.ini.tmpl"), "utf8")
    .replace("@HOSTS@", endpoints.map((endpoint) => `${endpoint.name} ansible_host=${endpoint.address} ansible_port=${endpoint.port}`).join("\n"))
    .replace("@USER@", first.user)
    .replace("@PRIVATE_KEY@", first.privateKeyPath)
    .replace("@KNOWN_HOSTS@", first.knownHostsPath)
    .replace("@SSH_EXECUTABLE@", sshWrapper)
    .replace("@PYTHON@", HOST_PYTHON);
  const inventoryPath = join(runDir, "inventory.ini");
  writeFileSync(inventoryPath, inventory);
  const argv = [
    "ansible-playbook", "--check", "--diff", "-f", String(endpoints.length), "-i", inventoryPath,
    "-e", JSON.stringify({ rootless_environment: environment }), join(ANSIBLE_DIR, "playbook.yml"),
  ];
  const env = {
    ...process.env,
    ANSIBLE_CONFIG: join(ANSIBLE_DIR, "ansible.cfg"),
    ANSIBLE_SSH_CONTROL_PATH_DIR: controlDir,
    ANSIBLE_LOCAL_TEMP: join(runDir, "tmp"),
    ANSIBLE_HOME: join(runDir, "home"),
  };
  const { result, wallMs, memory } = await runMeasured(argv, { env, timeoutMs: 10 * 60_000 });
  await closeMasters(controlDir);
  if (result.exitCode !== 0) {
    throw new BenchError("ansible-playbook --check failed", `rerun by hand: ANSIBLE_CONFIG=${env.ANSIBLE_CONFIG} ${argv.join(" ")}`, {
      host: "ansible",
      step: "run Ansible check",
      exitCode: result.exitCode,
      evidence: (result.stdout + result.stderr).split("\n").slice(-30),
    });
  }
  const notPlanned = endpoints.filter((endpoint) => !recapShowsChange(result.stdout, endpoint.name));
  if (notPlanned.length > 0) {
    throw new BenchError(`the check did not plan a change on ${notPlanned.map((endpoint) => endpoint.name).join(", ")}`, "read the play recap below", {
      host: "ansible",
      step: "run Ansible check",
      evidence: result.stdout.split("\n").slice(-30),
    });
  }
  const invocations = existsSync(sshLog) ? readFileSync(sshLog, "utf8").split("\n").filter((line) => line !== "").length : 0;
  return { wallMs, roundTripsPerHost: invocations / endpoints.length, peakRssKiB: memory.peakRssKiB };
}

/** The host's PLAY RECAP line: reached, nothing failed, and at least one task would change (no drop-in yet). */
function recapShowsChange(stdout: string, name: string): boolean {
  const line = stdout.split("\n").find((candidate) => candidate.startsWith(`${name} `) && candidate.includes("unreachable="));
  return line !== undefined && /changed=[1-9]/.test(line) && /unreachable=0\b/.test(line) && /failed=0\b/.test(line);
}

/** ControlPersist keeps one master per host alive for 60 s; the next run must not find it. */
async function closeMasters(controlDir: string): Promise<void> {
  // Each socket in the run's own ControlPath directory is one master; `-O exit` asks it to end.
  await Promise.all(readdirSync(controlDir).map((socket) => run(["ssh", "-F", "/dev/null", "-o", `ControlPath=${join(controlDir, socket)}`, "-O", "exit", "master"])));
}

/** The first line of `ansible-playbook --version`; fails before any host boots when Ansible is missing. */
export async function ansibleVersion(): Promise<string> {
  const result = await run(["ansible-playbook", "--version"]).catch((error: Error) => ({ exitCode: 127, stdout: "", stderr: error.message }));
  if (result.exitCode !== 0) {
    throw new BenchError("ansible-playbook is not installed", "apt-get install ansible-core (the benchmark compares with Ansible's check mode)", {
      host: "machine",
      step: "check prerequisites",
      evidence: result.stderr.split("\n"),
    });
  }
  return result.stdout.split("\n")[0]?.trim() ?? "unknown";
}
