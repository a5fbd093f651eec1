/**
 * `npm run bench [-- --quick]`: plan cost of this package against what SSH itself allows and against Ansible,
 * on lab hosts booted without Docker (instance `RDL_LAB`, default `rdlbench`), torn down at the end, on failure and
 * on Ctrl-C. Prints the tables and writes BENCHMARKS.md.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, release, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { once } from "node:events";
import { run } from "../lab/exec";
import { currentInstance } from "../lab/instance";
import { hostExec, labDown, labStatus, labUp, type LabHost } from "../lab/api";
import { factsScript } from "../provider/core/facts";
import { desiredEnvironment } from "../provider/core/schema";
import { labSpec } from "../tests/helpers/lab-spec";
import { ansibleVersion, installPythonOnHosts, runAnsibleCheck } from "./ansible";
import { BenchError } from "./bench-error";
import {
  cliPlan, grpcPlan, labHostVia, median, opensshFloor, PLAN_SETTINGS, PULUMI_DEFAULT_PARALLELISM, ssh2Floor, timed, writeCliHostsFile,
  type Endpoint, type PlanRun,
} from "./measure";
import { engineCosts, investigate, renderMarkdown, renderTables, type Context, type PlanResult, type Row, type StartupCosts } from "./report";
import { PulumiBench } from "./pulumi";

const PROJECT_ROOT = join(__dirname, "..", "..");
const LATENCY_MS = 25;
const KEPT_MARKER = "<!-- kept by npm run bench: measured by hand -->";
/** The machine is shared: the report says how loaded it was. */
const formatLoad = () => loadavg().map((value) => value.toFixed(1)).join(" / ");
/** The stack of the program without resources: the engine's start-up, previewed in every row. */
const EMPTY_STACK = "no-resources";

interface Settings {
  quick: boolean;
  sizes: number[];
  latencies: number[];
  runs: number;
}

function settingsFrom(argv: readonly string[]): Settings {
  const unknown = argv.filter((arg) => arg !== "--quick");
  if (unknown.length > 0) throw new BenchError(`unexpected argument "${unknown[0]}"`, "usage: npm run bench [-- --quick]", { host: "bench", step: "parse arguments" });
  const quick = argv.includes("--quick");
  return quick ? { quick, sizes: [1, 10], latencies: [0], runs: 3 } : { quick, sizes: [1, 10, 30], latencies: [0, LATENCY_MS], runs: 5 };
}

/** Everything started that must not outlive the run. */
class Resources {
  private relay?: ChildProcess;
  private labStarted = false;
  private done = false;
  constructor(readonly workDir: string) {}

  async labUp(count: number): Promise<LabHost[]> {
    this.labStarted = true;
    // Leftovers of an interrupted run of this instance would skew the fleet.
    await labDown();
    return labUp({ hosts: count, docker: false });
  }

  /** Starts the delaying relay in front of every host; returns its loopback port per host (same order). */
  async startRelay(delayMs: number, hosts: readonly LabHost[]): Promise<number[]> {
    await this.stopRelay();
    const relay = spawn(process.execPath, [join(__dirname, "relay.js"), String(delayMs), ...hosts.map((host) => `${host.address}:${host.port}`)], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    this.relay = relay;
    const [line] = (await Promise.race([once(createInterface({ input: relay.stdout! }), "line"), once(relay, "exit").then(() => [""])])) as string[];
    if (!line) throw new BenchError("the latency relay exited before listening", "", { host: "relay", step: "start relay" });
    return (JSON.parse(line) as { ports: number[] }).ports;
  }

  async stopRelay(): Promise<void> {
    const relay = this.relay;
    this.relay = undefined;
    if (!relay || relay.exitCode !== null || relay.signalCode !== null) return;
    const exited = once(relay, "exit");
    relay.kill("SIGTERM");
    await exited;
  }

  async release(): Promise<void> {
    if (this.done) return;
    this.done = true;
    await this.stopRelay();
    if (this.labStarted) await labDown();
    rmSync(this.workDir, { recursive: true, force: true });
  }
}

/** The hosts, either directly (port 22, the lab's known_hosts) or each through its relay port. */
function endpointsFor(hosts: readonly LabHost[], relayPorts: number[] | null, workDir: string): Endpoint[] {
  if (relayPorts === null) {
    const knownHostsPath = currentInstance().knownHostsPath;
    return hosts.map((host) => ({ ...host, knownHostsPath }));
  }
  const knownHostsPath = join(workDir, `known_hosts.relay`);
  writeFileSync(knownHostsPath, hosts.map((host, index) => `[127.0.0.1]:${relayPorts[index]} ${host.hostPublicKey}\n`).join(""));
  return hosts.map((host, index) => ({ ...host, address: "127.0.0.1", port: relayPorts[index], knownHostsPath }));
}

/** sshd's successful logins per host so far (the journal of each host), summed over `hosts`. */
async function acceptedLogins(hosts: readonly LabHost[]): Promise<number> {
  const counts = await Promise.all(hosts.map((host) => hostExec(host.name, "journalctl --no-pager -o cat | grep -c 'Accepted publickey' || true")));
  return counts.reduce((sum, result) => sum + Number(result.stdout.trim() || "0"), 0);
}

/**
 * Runs `once` warm-up + `runs` times; returns the median of the measured runs and the SSH connections per host
 * that the hosts' sshd saw over all of them.
 */
async function measure<T extends { wallMs: number }>(hosts: readonly LabHost[], runs: number, label: string, once: (run: number) => Promise<T>) {
  const before = await acceptedLogins(hosts);
  const results: T[] = [];
  for (let index = 0; index <= runs; index++) {
    const result = await once(index);
    if (index > 0) results.push(result);
  }
  const connectionsPerHost = ((await acceptedLogins(hosts)) - before) / ((runs + 1) * hosts.length);
  const wallMs = median(results.map((result) => result.wallMs));
  process.stderr.write(`[bench]   ${label}: ${Math.round(wallMs)} ms (runs: ${results.map((result) => Math.round(result.wallMs)).join(", ")})\n`);
  return { wallMs, connectionsPerHost, results };
}

async function planPath<T extends PlanRun>(hosts: readonly LabHost[], runs: number, label: string, workDir: string, once: (traceFile: string) => Promise<T>) {
  const measured = await measure(hosts, runs, label, (index) => once(join(workDir, `${label.replace(/\W+/g, "-")}-${hosts.length}-${index}-${Date.now()}.trace`)));
  const result: PlanResult = {
    wallMs: measured.wallMs,
    peakRssKiB: Math.max(...measured.results.map((run) => run.peakRssKiB)),
    // From the transport's trace, not sshd: the gRPC runs plan the fleet a second time (warm) in the same host.
    connectionsPerHost: median(measured.results.map((run) => run.counts.connectionsPerHost)),
    roundTripsPerHost: median(measured.results.map((run) => run.counts.roundTripsPerHost)),
  };
  return { result, runs: measured.results };
}

async function benchRow(allHosts: readonly LabHost[], allEndpoints: readonly Endpoint[], size: number, latencyMs: number, settings: Settings, workDir: string, pulumi: PulumiBench): Promise<Row> {
  const hosts = allHosts.slice(0, size);
  const endpoints = allEndpoints.slice(0, size);
  process.stderr.write(`[bench] ${size} host(s), ${latencyMs} ms one way\n`);
  const wall = (wallMs: number) => ({ wallMs });
  const ssh2 = await measure(hosts, settings.runs, "ssh2 floor", () => ssh2Floor(endpoints).then(wall));
  const openssh = await measure(hosts, settings.runs, "OpenSSH floor", () => opensshFloor(endpoints).then(wall));
  const grpc = await planPath(hosts, settings.runs, "plan via gRPC", workDir, (trace) => grpcPlan(hosts, endpoints, trace, PULUMI_DEFAULT_PARALLELISM));
  const grpcWarmMs = median(grpc.runs.map((run) => run.warmWallMs));
  const grpcHostStartMs = median(grpc.runs.map((run) => run.hostStartMs));
  const hostsFile = join(workDir, `hosts-${size}-${latencyMs}.yaml`);
  writeCliHostsFile(hostsFile, hosts, endpoints);
  const factsOnly = await measure(hosts, settings.runs, "ssh2 + the facts script (diagnostic)", () => ssh2Floor(endpoints, factsScript({ unit: "docker.service", dropInName: "override.conf" })).then(wall));
  const { result: cli } = await planPath(hosts, settings.runs, "plan via CLI", workDir, (trace) => cliPlan(hostsFile, size, trace));
  const environment = desiredEnvironment(labSpec(labHostVia(hosts[0], endpoints[0]), PLAN_SETTINGS));
  const ansible = await measure(hosts, settings.runs, "Ansible --check", (index) => runAnsibleCheck(endpoints, environment, join(workDir, `ansible-${size}-${latencyMs}-${index}`)));
  const stack = await pulumi.stack(`hosts-${size}-latency-${latencyMs}`, hostsFile);
  // Measured in the same row as the preview it is subtracted from: the machine's load changes over a run.
  const empty = await planPath(hosts, settings.runs, "pulumi preview, no resources", workDir, (trace) => pulumi.preview(EMPTY_STACK, 0, trace));
  const { result: preview } = await planPath(hosts, settings.runs, "pulumi preview", workDir, (trace) => pulumi.preview(stack, size, trace));
  const parallelDiff = await planPath(hosts, settings.runs, "pulumi preview, PULUMI_PARALLEL_DIFF=true", workDir, (trace) => pulumi.preview(stack, size, trace, { parallelDiff: true }));
  // Diagnostic: the same program with nothing in the state, so the engine calls Check only (no Diff, no SSH).
  const createStack = await pulumi.stack(`hosts-${size}-latency-${latencyMs}-create`, hostsFile, false);
  const creates = await planPath(hosts, settings.runs, "pulumi preview of creates (diagnostic)", workDir, (trace) => pulumi.preview(createStack, size, trace, { op: "create" }));
  const row: Row = {
    hosts: size,
    latencyMs,
    ssh2Floor: { wallMs: ssh2.wallMs, connectionsPerHost: ssh2.connectionsPerHost },
    opensshFloor: { wallMs: openssh.wallMs, connectionsPerHost: openssh.connectionsPerHost },
    grpc: grpc.result,
    grpcHostStartMs,
    grpcWarmMs,
    ssh2FactsScriptMs: factsOnly.wallMs,
    cli,
    pulumi: { ...preview, startupMs: empty.result.wallMs, startupPeakRssKiB: empty.result.peakRssKiB, createsMs: creates.result.wallMs, parallelDiffMs: parallelDiff.result.wallMs },
    ansible: {
      wallMs: ansible.wallMs,
      connectionsPerHost: ansible.connectionsPerHost,
      roundTripsPerHost: median(ansible.results.map((run) => run.roundTripsPerHost)),
      peakRssKiB: Math.max(...ansible.results.map((run) => run.peakRssKiB)),
    },
  };
  if (size > PULUMI_DEFAULT_PARALLELISM) {
    // Diagnostic only: how much of the gRPC plan's time is the engine's parallelism limit.
    const unbounded = await planPath(hosts, settings.runs, "plan via gRPC, parallelism = hosts", workDir, (trace) => grpcPlan(hosts, endpoints, trace, size));
    row.grpcUnbounded = { wallMs: unbounded.result.wallMs };
    const unboundedPreview = await planPath(hosts, settings.runs, "pulumi preview, PULUMI_PARALLEL_DIFF=true --parallel = hosts", workDir, (trace) =>
      pulumi.preview(stack, size, trace, { parallelDiff: true, parallel: size }),
    );
    row.pulumi.parallelDiffUnboundedMs = unboundedPreview.result.wallMs;
  }
  return row;
}

const packageVersion = (name: string) => (JSON.parse(readFileSync(join(PROJECT_ROOT, "node_modules", name, "package.json"), "utf8")) as { version: string }).version;

async function machineFacts(host: LabHost): Promise<[string, string][]> {
  const opensshClient = (await run(["ssh", "-V"])).stderr.trim();
  const hostSsh = (await hostExec(host.name, "ssh -V 2>&1; . /etc/os-release; echo \"$PRETTY_NAME\"")).stdout.trim().split("\n");
  const cpu = cpus();
  return [
    ["CPU", `${cpu.length} × ${cpu[0]?.model ?? "unknown"}`],
    ["memory", `${(totalmem() / 2 ** 30).toFixed(1)} GiB`],
    ["kernel", release()],
    ["machine OS", `Debian ${readFileSync("/etc/debian_version", "utf8").trim()}`],
    ["node", process.version],
    ["ssh2", packageVersion("ssh2")],
    ["@pulumi/pulumi", packageVersion("@pulumi/pulumi")],
    ["OpenSSH client", opensshClient],
    ["ansible-core", await ansibleVersion()],
    ["Python for Ansible (controller and hosts)", (await run(["python3.11", "--version"])).stdout.trim()],
    ["lab hosts", `${hostSsh[1] ?? "unknown"} in systemd-nspawn (one netns each, bridged in a hub netns), sshd ${hostSsh[0] ?? "unknown"}, booted without Docker`],
  ];
}

/** `count` results of `once`, one after the other (never at once: each is timed). */
async function sequence<T>(count: number, once: () => Promise<T>): Promise<T[]> {
  const results: T[] = [];
  for (let index = 0; index < count; index++) results.push(await once());
  return results;
}

/** Start-up costs without SSH, each the median of 5 fresh processes: what the floor (measured in a running process) never pays. */
async function startupCosts(pulumi: PulumiBench): Promise<StartupCosts> {
  const wallMedian = async (argv: string[]) => median(await sequence(5, async () => (await timed(() => run(argv))).wallMs));
  const cli = join(__dirname, "..", "provider", "cli", "main.js");
  const requireMedian = async (module: string) => {
    const timer = `const { performance } = require("node:perf_hooks"); const started = performance.now(); require(${JSON.stringify(module)}); process.stdout.write(String(performance.now() - started));`;
    return median(await sequence(5, async () => Number((await run([process.execPath, "-e", timer], { cwd: PROJECT_ROOT })).stdout)));
  };
  return {
    nodeMs: await wallMedian([process.execPath, "-e", ""]),
    versionMs: await wallMedian([process.execPath, cli, "--version"]),
    planHelpMs: await wallMedian([process.execPath, cli, "plan", "--help"]),
    cliUsageMs: await wallMedian([process.execPath, cli]),
    // Timed inside the process: what the provider host spends on its first call requiring the provider.
    providerModulesMs: await requireMedian(join(__dirname, "..", "provider", "dynamic.js")),
    pulumiCliMs: median(await sequence(5, async () => (await pulumi.version()).wallMs)),
    pulumiSdkMs: await requireMedian("@pulumi/pulumi"),
  };
}

async function main(): Promise<void> {
  const settings = settingsFrom(process.argv.slice(2));
  process.env.RDL_LAB ??= "rdlbench";
  await ansibleVersion();
  const started = Date.now();
  const loadAtStart = formatLoad();
  const resources = new Resources(mkdtempSync(join(tmpdir(), "rdl-bench-")));
  const interrupt = (signal: NodeJS.Signals) => {
    process.stderr.write(`[bench] ${signal}: tearing down the lab hosts\n`);
    resources.release().finally(() => process.exit(130));
  };
  process.once("SIGINT", interrupt);
  process.once("SIGTERM", interrupt);
  try {
    const maxHosts = Math.max(...settings.sizes);
    process.stderr.write(`[bench] lab instance "${currentInstance().name}": ${maxHosts} host(s) without Docker\n`);
    const hosts = await resources.labUp(maxHosts);
    await installPythonOnHosts(hosts, resources.workDir);
    const pulumi = new PulumiBench(resources.workDir);
    await pulumi.stack(EMPTY_STACK, null);
    const rows: Row[] = [];
    for (const latencyMs of settings.latencies) {
      const relayPorts = latencyMs === 0 ? null : await resources.startRelay(latencyMs, hosts);
      const endpoints = endpointsFor(hosts, relayPorts, resources.workDir);
      for (const size of settings.sizes) rows.push(await benchRow(hosts, endpoints, size, latencyMs, settings, resources.workDir, pulumi));
      await resources.stopRelay();
    }
    const pulumiVersion = (await pulumi.version()).version;
    const context: Context = {
      quick: settings.quick,
      pulumiVersion,
      runs: settings.runs,
      grpcParallelism: PULUMI_DEFAULT_PARALLELISM,
      latencyMethod: settings.latencies.some((latency) => latency > 0)
        ? `this kernel has no \`netem\` qdisc, so ${LATENCY_MS} ms is added by a relay (\`bench/relay.ts\`, its own process on the machine's loopback): every tool connects to the relay's port, which forwards to the host's sshd and delivers each chunk, and the end of stream, ${LATENCY_MS} ms (timer resolution: ≥ ${LATENCY_MS} ms) after it arrived, in order, in each direction (+${2 * LATENCY_MS} ms per round trip). The 0 ms rows connect directly.`
        : "none in this run (`--quick`); the full run adds 25 ms each way with a delaying relay (this kernel has no `netem` qdisc).",
      facts: [...(await machineFacts(hosts[0])), ["pulumi CLI (file backend)", pulumiVersion]],
      startup: await startupCosts(pulumi),
      startedAt: new Date(started).toISOString(),
      durationS: 0,
    };
    context.durationS = (Date.now() - started) / 1000;
    context.facts.push(["load average (1 / 5 / 15 min)", `at start ${loadAtStart}, at end ${formatLoad()}`]);
    const tables = renderTables(rows, context);
    const findings = investigate(rows, context);
    const engine = rows.map((row) => engineCosts(row, context));
    const report = join(PROJECT_ROOT, "BENCHMARKS.md");
    // Sections measured by other tools (the pulumi CLI build) follow this marker and survive a new run.
    const previous = existsSync(report) ? readFileSync(report, "utf8") : "";
    const kept = previous.includes(KEPT_MARKER) ? previous.slice(previous.indexOf(KEPT_MARKER)) : "";
    writeFileSync(report, renderMarkdown(tables, findings, context, engine) + (kept ? `\n${kept}` : ""));
    process.stdout.write(`${tables}\n\n${findings.length === 0 ? "All targets met." : `Missed targets:\n${findings.join("\n")}`}\n\nWhat the Pulumi engine costs:\n${engine.join("\n")}\n\nWritten to BENCHMARKS.md.\n`);
  } finally {
    process.stderr.write("[bench] tearing down the lab hosts\n");
    await resources.release();
    process.stderr.write(`[bench] lab "${currentInstance().name}" down: ${labStatus().length} host(s) left\n`);
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bench: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
