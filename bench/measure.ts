/**
 * The measured operations: the two SSH floors and the provider's two plan paths, each over a list of endpoints
 * (a lab host directly, or through the latency relay), plus the counting and timing they share.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { Client } from "ssh2";
import { run } from "../lab/exec";
import type { LabHost } from "../lab/api";
import { LAB_DEFAULTS, labHostEntries } from "../lab/cli-hosts";
import { TRACE_ENV } from "../provider/transport";
import { labInputs } from "../tests/helpers/lab-spec";
import { startProviderHost } from "../tests/helpers/provider-host";
import { serializeProvider } from "../tests/helpers/serialize";
import { BenchError } from "./bench-error";
import { mapBounded } from "../provider/cli/run";
import { runMeasured } from "./memory";
import type { LabHostInfo } from "../lab/cli-hosts";

/** How the benchmark reaches one lab host: its own address, or the relay's loopback port. */
export interface Endpoint extends Omit<LabHostInfo, "target"> {
  /** known_hosts with this endpoint's `[address]:port` (for OpenSSH and Ansible). */
  knownHostsPath: string;
}

/** What the plan declares on every host, for the provider, the CLI and (as a drop-in) Ansible alike. */
export const PLAN_SETTINGS = { networkDriver: LAB_DEFAULTS.networkDriver, ipv6: LAB_DEFAULTS.ipv6 };

/** The Pulumi engine's default parallelism: 4 × GOMAXPROCS (see shared/notes/pulumi-without-cli.md). */
export const PULUMI_DEFAULT_PARALLELISM = 4 * availableParallelism();

const CLI_MAIN = join(__dirname, "..", "provider", "cli", "main.js");

export async function timed<T>(work: () => Promise<T>): Promise<{ value: T; wallMs: number }> {
  const started = performance.now();
  const value = await work();
  return { value, wallMs: performance.now() - started };
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}


/** The lab host as it looks through `endpoint` (address and port replaced), for the shared input builders. */
export function labHostVia(host: LabHost, endpoint: Endpoint): LabHost {
  return { ...host, address: endpoint.address, port: endpoint.port };
}

/**
 * One ssh2 connection and one command per host, all at once: with `true`, what SSH itself costs from Node (the
 * floor); with the provider's facts script, what the plan's remote work costs without the provider around it.
 */
export async function ssh2Floor(endpoints: readonly Endpoint[], command = "true"): Promise<number> {
  const privateKeys = new Map(endpoints.map((endpoint) => [endpoint.privateKeyPath, readFileSync(endpoint.privateKeyPath)]));
  const { wallMs } = await timed(() => Promise.all(endpoints.map((endpoint) => ssh2Exec(endpoint, privateKeys.get(endpoint.privateKeyPath)!, command))));
  return wallMs;
}

function ssh2Exec(endpoint: Endpoint, privateKey: Buffer, command: string): Promise<void> {
  // The same check the transport makes: the host key must be the pinned one.
  const expectedKey = Buffer.from(endpoint.hostPublicKey.split(/\s+/)[1], "base64");
  return new Promise((resolve, reject) => {
    const client = new Client();
    const fail = (summary: string, cause?: unknown) =>
      reject(new BenchError(summary, "check the lab host with `npm run lab -- status`", { host: `${endpoint.name} (${endpoint.address}:${endpoint.port})`, step: "ssh2 floor", cause }));
    client.on("error", (error) => fail(`ssh2 failed: ${error.message}`, error));
    client.on("ready", () =>
      client.exec(command, (error, stream) => {
        if (error) return fail(`exec failed: ${error.message}`, error);
        stream.resume();
        stream.stderr.resume();
        stream.on("close", (code: number | null) => {
          client.end();
          if (code === 0) resolve();
          else fail(`the command exited with ${String(code)}`);
        });
      }),
    );
    client.connect({
      host: endpoint.address,
      port: endpoint.port,
      username: endpoint.user,
      privateKey,
      hostVerifier: (key: Buffer) => key.equals(expectedKey),
      readyTimeout: 30_000,
    });
  });
}

export function opensshArgv(endpoint: Endpoint, command: string): string[] {
  return [
    "ssh", "-F", "/dev/null", "-i", endpoint.privateKeyPath, "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
    "-o", `UserKnownHostsFile=${endpoint.knownHostsPath}`, "-o", "GlobalKnownHostsFile=/dev/null",
    "-p", String(endpoint.port), `${endpoint.user}@${endpoint.address}`, command,
  ];
}

/** One `ssh … true` process per host, all at once. */
export async function opensshFloor(endpoints: readonly Endpoint[]): Promise<number> {
  const { value: results, wallMs } = await timed(() => Promise.all(endpoints.map((endpoint) => run(opensshArgv(endpoint, "true"), { timeoutMs: 60_000 }))));
  const failed = results.findIndex((result) => result.exitCode !== 0);
  if (failed >= 0) {
    throw new BenchError("ssh failed", "check the lab host with `npm run lab -- status`", {
      host: endpoints[failed].name,
      step: "OpenSSH floor",
      command: opensshArgv(endpoints[failed], "true").join(" "),
      exitCode: results[failed].exitCode,
      evidence: results[failed].stderr.split("\n"),
    });
  }
  return wallMs;
}

export interface PlanRun {
  wallMs: number;
  /** Peak resident set (KiB): of the provider host's process (gRPC), of the whole process tree (CLI, pulumi). */
  peakRssKiB: number;
  counts: Counts;
}

export interface GrpcPlanRun extends PlanRun {
  /** The same fleet planned again by the same, now warm, host: evidence for what a cold host costs. */
  warmWallMs: number;
  /** Spawning the host until it listens (Node, @pulumi/pulumi, the gRPC server): what `pulumi preview` pays before the first Check. */
  hostStartMs: number;
}

/**
 * A fleet plan through the real dynamic-provider host, as `pulumi preview` drives it: one host process per run,
 * Configure, then for every resource Check and Diff (olds = the inputs an earlier apply recorded), at most
 * `parallelism` resources at a time. The timed part is Check+Diff of the fleet; starting the host is not.
 */
export async function grpcPlan(hosts: readonly LabHost[], endpoints: readonly Endpoint[], traceFile: string, parallelism: number): Promise<GrpcPlanRun> {
  // Serialized before the clock starts: the engine gets the text from the program, the host never serializes.
  const providerText = (await serializeProvider()).text;
  const { value: host, wallMs: hostStartMs } = await timed(() => startProviderHost({ env: { [TRACE_ENV]: traceFile }, providerText }));
  try {
    await host.configure();
    const planFleet = () =>
      mapBounded(endpoints, parallelism, async (endpoint) => {
        const news = { ...labInputs(labHostVia(hostNamed(hosts, endpoint.name), endpoint)), ...PLAN_SETTINGS };
        const checked = await host.check({}, news);
        if (checked.failures.length > 0) {
          throw new BenchError("Check rejected the inputs", "", { host: endpoint.name, step: "gRPC Check", evidence: checked.failures.map((failure) => `${failure.property}: ${failure.reason}`) });
        }
        const diff = await host.diff(`${endpoint.address}/docker.service/override.conf`, checked.inputs, checked.inputs);
        // The hosts have no drop-in yet: a plan that finds nothing to change did not look.
        if (diff.changes !== "some") throw new BenchError(`Diff answered "${diff.changes}", expected "some"`, "", { host: endpoint.name, step: "gRPC Diff" });
      });
    const { wallMs } = await timed(planFleet);
    const counts = traceCounts(traceFile, endpoints.length);
    const peakRssKiB = peakRssOfNodeWithEnv(TRACE_ENV, traceFile);
    const warm = await timed(planFleet);
    return { wallMs, peakRssKiB, counts, warmWallMs: warm.wallMs, hostStartMs };
  } finally {
    await host.stop();
  }
}

function hostNamed(hosts: readonly LabHost[], name: string): LabHost {
  const host = hosts.find((candidate) => candidate.name === name);
  if (!host) throw new BenchError(`no lab host named ${name}`, "", { host: name, step: "find host" });
  return host;
}

/** VmHWM of the node process whose environment has `name=value` (the provider host is found by its own trace file). */
function peakRssOfNodeWithEnv(name: string, value: string): number {
  for (const pid of readdirSync("/proc").filter((entry) => /^\d+$/.test(entry))) {
    try {
      if (readFileSync(`/proc/${pid}/comm`, "utf8").trim() !== "node") continue;
      if (!readFileSync(`/proc/${pid}/environ`, "utf8").split("\0").includes(`${name}=${value}`)) continue;
      const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
      if (match) return Number(match[1]);
    } catch {
      // Processes come and go while /proc is read.
    }
  }
  throw new BenchError("the provider host's node process was not found", "", { host: "provider host", step: "measure memory" });
}

/** The hosts file the CLI reads: the lab's own entries (host key pinned, key by path), reached through `endpoints`. */
export function writeCliHostsFile(path: string, hosts: readonly LabHost[], endpoints: readonly Endpoint[]): void {
  const entries = labHostEntries(endpoints.map((endpoint) => labHostVia(hostNamed(hosts, endpoint.name), endpoint)));
  // JSON is YAML.
  writeFileSync(path, JSON.stringify({ defaults: LAB_DEFAULTS, hosts: entries }, null, 2));
}

/** `rootless-docker-net plan --hosts FILE --json` as a user runs it (a fresh node process), with every host at once. */
export async function cliPlan(hostsFile: string, hostCount: number, traceFile: string): Promise<PlanRun> {
  const argv = [process.execPath, CLI_MAIN, "plan", "--hosts", hostsFile, "--json", "--concurrency", String(hostCount)];
  const { result, wallMs, memory } = await runMeasured(argv, { env: { ...process.env, [TRACE_ENV]: traceFile }, timeoutMs: 5 * 60_000 });
  // 2 = differences found, which is what a fresh host without the drop-in must give.
  if (result.exitCode !== 2) {
    throw new BenchError(`the CLI plan exited ${result.exitCode}, expected 2 (differences found)`, "", {
      host: "cli",
      step: "CLI plan",
      command: argv.join(" "),
      exitCode: result.exitCode,
      evidence: (result.stderr + result.stdout).split("\n").slice(-20),
    });
  }
  return { wallMs, peakRssKiB: memory.peakRssKiB, counts: traceCounts(traceFile, hostCount) };
}

export interface Counts {
  connectionsPerHost: number;
  roundTripsPerHost: number;
}

/** Connections and execs per host from the transport's trace (ROOTLESS_DOCKER_NET_TRACE), bastion hops left out. */
export function traceCounts(traceFile: string, hostCount: number): Counts {
  const events = existsSync(traceFile)
    ? readFileSync(traceFile, "utf8").split("\n").filter((line) => line !== "").map((line) => JSON.parse(line) as { event: string; via?: string })
    : [];
  return {
    connectionsPerHost: events.filter((event) => event.event === "connect" && event.via === undefined).length / hostCount,
    roundTripsPerHost: events.filter((event) => event.event === "exec").length / hostCount,
  };
}
