/** The benchmark's table (printed and written to BENCHMARKS.md), its targets and the investigation of misses. */

export interface PlanResult {
  wallMs: number;
  peakRssKiB: number;
  connectionsPerHost: number;
  roundTripsPerHost: number;
}

/** `pulumi preview` of the row's hosts, with what the engine costs around the plan. */
export interface PulumiResult extends PlanResult {
  /** Median `pulumi preview` of the same program declaring no resources, same backend: the engine's start-up. */
  startupMs: number;
  /** Peak memory of that empty preview's process tree. */
  startupPeakRssKiB: number;
  /** A preview of the same program with nothing in the state: every resource a create, so Check only, no Diff. */
  createsMs: number;
  /** The same preview with PULUMI_PARALLEL_DIFF=true: the engine runs Diffs as parallel steps (by default one at a time). */
  parallelDiffMs: number;
  /** PULUMI_PARALLEL_DIFF=true and `--parallel` = hosts (only above the default parallelism). */
  parallelDiffUnboundedMs?: number;
}

export interface Row {
  hosts: number;
  latencyMs: number;
  ssh2Floor: { wallMs: number; connectionsPerHost: number };
  opensshFloor: { wallMs: number; connectionsPerHost: number };
  grpc: PlanResult;
  /** Median time from spawning the dynamic-provider host until it listens. */
  grpcHostStartMs: number;
  /** Median of the same fleet planned a second time by the same provider host (warm): evidence, not a column. */
  grpcWarmMs: number;
  /** ssh2 floor with the provider's facts script instead of `true`: the plan's remote work without the provider. */
  ssh2FactsScriptMs: number;
  cli: PlanResult;
  pulumi: PulumiResult;
  ansible: { wallMs: number; connectionsPerHost: number; roundTripsPerHost: number; peakRssKiB: number };
  /** The gRPC plan again with parallelism = hosts: evidence for how much the engine's default parallelism costs. */
  grpcUnbounded?: { wallMs: number };
}

export interface StartupCosts {
  /** `node -e ""`: the runtime alone. */
  nodeMs: number;
  /** `rootless-docker-net --version`: Node start plus the argument parser, nothing else (no engine, zod or ssh2). */
  versionMs: number;
  /** `rootless-docker-net plan --help`: the same for a command's help. */
  planHelpMs: number;
  /** `rootless-docker-net` without arguments (prints usage): Node start plus loading the CLI's modules. */
  cliUsageMs: number;
  /** Requiring the provider module in a fresh Node, timed inside it: the provider host's first-call cost. */
  providerModulesMs: number;
  /** `pulumi version`: the Go CLI starting, nothing else. */
  pulumiCliMs: number;
  /** Requiring `@pulumi/pulumi` in a fresh Node, timed inside it: paid by the program and again by the provider host. */
  pulumiSdkMs: number;
}

export interface Context {
  quick: boolean;
  /** `pulumi version` of the CLI the preview rows ran. */
  pulumiVersion: string;
  runs: number;
  grpcParallelism: number;
  latencyMethod: string;
  facts: [string, string][];
  startup: StartupCosts;
  startedAt: string;
  durationS: number;
}

export const TARGET_FLOOR_RATIO = 1.5;
/** Issue 10: `pulumi preview` of this many hosts at least TARGET_PULUMI_ANSIBLE_SPEEDUP× faster than Ansible's check mode. */
export const TARGET_PULUMI_HOSTS = 30;
export const TARGET_PULUMI_ANSIBLE_SPEEDUP = 3;
export const TARGET_ANSIBLE_SPEEDUP = 5;
/** `--version` and `plan --help` answer within this much of a bare `node -e ""` (issue 12). */
export const TARGET_STARTUP_OVER_NODE_MS = 150;

const ms = (value: number) => `${Math.round(value)} ms`;
const ratio = (value: number) => `${value.toFixed(2)}×`;
const perHost = (value: number) => (Number.isInteger(value) ? String(value) : value.toFixed(2));
const mib = (kib: number) => `${(kib / 1024).toFixed(0)} MiB`;

interface Verdict {
  path: "gRPC" | "CLI";
  floorRatio: number;
  ansibleSpeedup: number;
  floorMet: boolean;
  ansibleMet: boolean;
}

function verdicts(row: Row): Verdict[] {
  return (["gRPC", "CLI"] as const).map((path) => {
    const plan = path === "gRPC" ? row.grpc : row.cli;
    const floorRatio = plan.wallMs / row.ssh2Floor.wallMs;
    const ansibleSpeedup = row.ansible.wallMs / plan.wallMs;
    return { path, floorRatio, ansibleSpeedup, floorMet: floorRatio <= TARGET_FLOOR_RATIO, ansibleMet: ansibleSpeedup >= TARGET_ANSIBLE_SPEEDUP };
  });
}

const met = (ok: boolean) => (ok ? "met" : "**MISSED**");

/** How many times faster than Ansible's check mode `pulumi preview` is, as run and with the engine's start-up taken out. */
export function pulumiSpeedup(row: Row): { withStartup: number; withoutStartup: number; parallelDiff: number } {
  return {
    withStartup: row.ansible.wallMs / row.pulumi.wallMs,
    withoutStartup: row.ansible.wallMs / (row.pulumi.wallMs - row.pulumi.startupMs),
    parallelDiff: row.ansible.wallMs / row.pulumi.parallelDiffMs,
  };
}

/**
 * Where a `pulumi preview`'s time goes, from the other measurements of the same row: the empty preview (engine,
 * backend, language host, program), the provider host's start, the plan itself as the gRPC row drives it (Check and
 * Diff through the same host at the same parallelism), and what is left: the engine's work around each resource.
 */
export function engineCosts(row: Row, context: Pick<Context, "grpcParallelism" | "startup">): string {
  return `- ${row.hosts} host(s), ${row.latencyMs} ms: ${engineCostParts(row, context)}.`;
}

function engineCostParts(row: Row, context: Pick<Context, "grpcParallelism" | "startup">): string {
  const engineMs = row.pulumi.wallMs - row.pulumi.startupMs - row.grpcHostStartMs - row.grpc.wallMs;
  const parts = [
    `\`pulumi preview\` ${ms(row.pulumi.wallMs)}: start-up (the empty preview) ${ms(row.pulumi.startupMs)} (the Go CLI alone starts in ${ms(context.startup.pulumiCliMs)}, a fresh Node in ${ms(context.startup.nodeMs)}, and requiring \`@pulumi/pulumi\` takes ${ms(context.startup.pulumiSdkMs)} in the program)`,
    `the dynamic-provider host starting ${ms(row.grpcHostStartMs)} (Node, \`@pulumi/pulumi\` again, its gRPC server; not in the empty preview, which starts no provider)`,
    `Check and Diff of every host through that host ${ms(row.grpc.wallMs)} (the gRPC row; its first call loads the serialized provider and its modules: ${ms(context.startup.providerModulesMs)} in a fresh Node)`,
    `left for the engine around the resources ${ms(engineMs)} (${ms(engineMs / row.hosts)} per resource)`,
    `a preview of the same program with nothing in the state (every host a create: Check only, no Diff, no SSH) took ${ms(row.pulumi.createsMs)}, ${ms(row.pulumi.createsMs - row.pulumi.startupMs)} over the empty preview: the program declaring the resources, the provider host and the engine's steps without our plan`,
  ];
  parts.push(
    `by default the engine calls Diff inside its step generator, one resource after the other, whatever \`--parallel\` says (pkg/resource/deploy/step_generator.go in 3.248: the Diff runs as a parallel step only with \`PULUMI_PARALLEL_DIFF=true\`): with it the preview took ${ms(row.pulumi.parallelDiffMs)} (${ms(Math.abs(row.pulumi.wallMs - row.pulumi.parallelDiffMs))} ${row.pulumi.parallelDiffMs <= row.pulumi.wallMs ? "less" : "more"})` +
      (row.pulumi.parallelDiffUnboundedMs === undefined ? "" : `, and ${ms(row.pulumi.parallelDiffUnboundedMs)} with \`--parallel ${row.hosts}\` instead of the default ${context.grpcParallelism}`),
  );
  return parts.join("; ");
}

export function renderTables(rows: readonly Row[], context: Context): string {
  const times = [
    `| hosts | latency (one way) | ssh2 floor | OpenSSH floor | plan via gRPC host | plan via CLI | Ansible --check | plan ÷ ssh2 floor (gRPC / CLI) | Ansible ÷ plan (gRPC / CLI) | ≤ ${TARGET_FLOOR_RATIO}× floor (gRPC / CLI) | ≥ ${TARGET_ANSIBLE_SPEEDUP}× faster than Ansible (gRPC / CLI) |`,
    "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ...rows.map((row) => {
      const [grpc, cli] = verdicts(row);
      return `| ${row.hosts} | ${row.latencyMs} ms | ${ms(row.ssh2Floor.wallMs)} | ${ms(row.opensshFloor.wallMs)} | ${ms(row.grpc.wallMs)} | ${ms(row.cli.wallMs)} | ${ms(row.ansible.wallMs)} | ${ratio(grpc.floorRatio)} / ${ratio(cli.floorRatio)} | ${ratio(grpc.ansibleSpeedup)} / ${ratio(cli.ansibleSpeedup)} | ${met(grpc.floorMet)} / ${met(cli.floorMet)} | ${met(grpc.ansibleMet)} / ${met(cli.ansibleMet)} |`;
    }),
  ];
  const pulumiTimes = [
    `| hosts | latency | \`pulumi preview\` | empty preview (start-up) | without start-up | with \`PULUMI_PARALLEL_DIFF=true\` | and \`--parallel\` = hosts | plan via gRPC host | plan via CLI | Ansible --check | Ansible ÷ pulumi preview (with / without start-up / parallel diff) | ≥ ${TARGET_PULUMI_ANSIBLE_SPEEDUP}× faster than Ansible (${TARGET_PULUMI_HOSTS} hosts; default / parallel diff) |`,
    "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ...rows.map((row) => {
      const speedup = pulumiSpeedup(row);
      const verdict = row.hosts === TARGET_PULUMI_HOSTS ? `${met(speedup.withStartup >= TARGET_PULUMI_ANSIBLE_SPEEDUP)} / ${met(speedup.parallelDiff >= TARGET_PULUMI_ANSIBLE_SPEEDUP)}` : "—";
      return `| ${row.hosts} | ${row.latencyMs} ms | ${ms(row.pulumi.wallMs)} | ${ms(row.pulumi.startupMs)} | ${ms(row.pulumi.wallMs - row.pulumi.startupMs)} | ${ms(row.pulumi.parallelDiffMs)} | ${row.pulumi.parallelDiffUnboundedMs === undefined ? "—" : ms(row.pulumi.parallelDiffUnboundedMs)} | ${ms(row.grpc.wallMs)} | ${ms(row.cli.wallMs)} | ${ms(row.ansible.wallMs)} | ${ratio(speedup.withStartup)} / ${ratio(speedup.withoutStartup)} / ${ratio(speedup.parallelDiff)} | ${verdict} |`;
    }),
  ];
  const counts = [
    "| hosts | latency | SSH connections per host (ssh2 floor / OpenSSH floor / gRPC / CLI / pulumi preview / Ansible) | round trips (execs) per host (gRPC / CLI / pulumi preview / Ansible) | peak memory (gRPC provider host / CLI / pulumi preview / empty pulumi preview / Ansible) |",
    "|---:|---:|---|---|---|",
    ...rows.map(
      (row) =>
        `| ${row.hosts} | ${row.latencyMs} ms | ${[row.ssh2Floor, row.opensshFloor, row.grpc, row.cli, row.pulumi, row.ansible].map((tool) => perHost(tool.connectionsPerHost)).join(" / ")} | ${[row.grpc, row.cli, row.pulumi, row.ansible].map((tool) => perHost(tool.roundTripsPerHost)).join(" / ")} | ${[row.grpc.peakRssKiB, row.cli.peakRssKiB, row.pulumi.peakRssKiB, row.pulumi.startupPeakRssKiB, row.ansible.peakRssKiB].map(mib).join(" / ")} |`,
    ),
  ];
  const startup = [
    `| command (a fresh process each) | median of 5 | over \`node -e ""\` | ≤ ${TARGET_STARTUP_OVER_NODE_MS} ms over Node |`,
    "|---|---:|---:|---|",
    ...startupRows(context.startup).map(([command, wallMs, overMs]) => `| ${command} | ${ms(wallMs)} | ${overMs === null ? "—" : ms(overMs)} | ${overMs === null ? "—" : met(overMs <= TARGET_STARTUP_OVER_NODE_MS)} |`),
  ];
  return [
    `Median wall time of ${context.runs} runs per cell (after one discarded warm-up run), ${context.quick ? "`--quick` (1 and 10 hosts, no latency)" : "full run"}.`,
    "",
    ...times,
    "",
    ...pulumiTimes,
    "",
    ...counts,
    "",
    ...startup,
  ].join("\n");
}

/** The start-up rows: the command, its wall time and, for the commands with a target, the time over bare Node. */
function startupRows(startup: StartupCosts): [string, number, number | null][] {
  return [
    ['`node -e ""`', startup.nodeMs, null],
    ["`rootless-docker-net --version`", startup.versionMs, startup.versionMs - startup.nodeMs],
    ["`rootless-docker-net plan --help`", startup.planHelpMs, startup.planHelpMs - startup.nodeMs],
  ];
}

/** For every missed target, what the measurements say about where the time went. */
export function investigate(rows: readonly Row[], context: Context): string[] {
  const findings: string[] = [];
  for (const row of rows) {
    for (const verdict of verdicts(row)) {
      if (verdict.floorMet && verdict.ansibleMet) continue;
      const plan = verdict.path === "gRPC" ? row.grpc : row.cli;
      const missed = [
        ...(verdict.floorMet ? [] : [`${ratio(verdict.floorRatio)} the ssh2 floor (target ≤ ${TARGET_FLOOR_RATIO}×)`]),
        ...(verdict.ansibleMet ? [] : [`only ${ratio(verdict.ansibleSpeedup)} faster than Ansible (target ≥ ${TARGET_ANSIBLE_SPEEDUP}×)`]),
      ].join(" and ");
      const evidence: string[] = [
        `the plan made ${perHost(plan.connectionsPerHost)} connection(s) and ${perHost(plan.roundTripsPerHost)} exec(s) per host against the floor's 1 and 1`,
        `${ms(plan.wallMs - row.ssh2Floor.wallMs)} over the floor`,
        `running the provider's facts script instead of \`true\` over bare ssh2 (same connections, no provider) takes ${ms(row.ssh2FactsScriptMs)} (${ratio(row.ssh2FactsScriptMs / row.ssh2Floor.wallMs)} the floor): that much of the gap is our facts script running on the host (systemctl --user show, reading /proc and the drop-ins), not the Node, gRPC or SSH side`,
      ];
      if (verdict.path === "CLI") {
        evidence.push(
          `starting the CLI without SSH (usage only) takes ${ms(context.startup.cliUsageMs)} by itself, of which ${ms(context.startup.nodeMs)} is Node starting and the rest loading its modules (zod and the schema, ssh2, yaml): the floor is measured inside an already running Node process`,
        );
      } else {
        if (row.hosts > context.grpcParallelism) {
          evidence.push(
            `the engine's default parallelism is ${context.grpcParallelism}, so ${row.hosts} hosts are planned in ${Math.ceil(row.hosts / context.grpcParallelism)} waves while the floor opens all connections at once` +
              (row.grpcUnbounded ? `; with parallelism = ${row.hosts} the same plan took ${ms(row.grpcUnbounded.wallMs)} (${ratio(row.grpcUnbounded.wallMs / row.ssh2Floor.wallMs)} the floor)` : ""),
          );
        }
        const warm = `the same fleet planned a second time by the same, now warm, provider host took ${ms(row.grpcWarmMs)} (${ratio(row.grpcWarmMs / row.ssh2Floor.wallMs)} the floor)`;
        evidence.push(
          row.grpcWarmMs < 0.8 * plan.wallMs
            ? `${warm}: ${ms(plan.wallMs - row.grpcWarmMs)} of the first pass is the host loading the serialized provider and its modules on the first call (requiring the provider module in a fresh Node takes ${ms(context.startup.providerModulesMs)}: zod and the schema, ssh2)`
            : `${warm}: a warm host is not much faster, so the cost is per call, not start-up`,
        );
        evidence.push("each Diff is a gRPC round trip to the provider host, which validates the inputs and runs the facts script (one exec that reads the drop-ins, systemctl and /proc) instead of `true`");
      }
      findings.push(`- ${row.hosts} host(s), ${row.latencyMs} ms: plan via ${verdict.path} is ${missed}. Measured: ${evidence.join("; ")}.`);
    }
  }
  for (const row of rows.filter((candidate) => candidate.hosts === TARGET_PULUMI_HOSTS)) {
    const speedup = pulumiSpeedup(row);
    if (speedup.withStartup >= TARGET_PULUMI_ANSIBLE_SPEEDUP) continue;
    findings.push(
      `- ${row.hosts} host(s), ${row.latencyMs} ms: \`pulumi preview\` is only ${ratio(speedup.withStartup)} faster than Ansible's check mode (target ≥ ${TARGET_PULUMI_ANSIBLE_SPEEDUP}×); without the engine's start-up ${ratio(speedup.withoutStartup)}. Measured: ${engineCostParts(row, context)}.`,
    );
  }
  for (const [command, , overMs] of startupRows(context.startup)) {
    if (overMs !== null && overMs > TARGET_STARTUP_OVER_NODE_MS) {
      findings.push(`- ${command} starts ${ms(overMs)} after a bare Node (target ≤ ${TARGET_STARTUP_OVER_NODE_MS} ms): it loads more than the argument parser (tests/unit/cli-startup.test.ts lists what it must not load).`);
    }
  }
  return findings;
}

export function renderMarkdown(tables: string, findings: readonly string[], context: Context, engine: readonly string[] = []): string {
  return [
    "# Benchmarks",
    "",
    "Written by `npm run bench` (`-- --quick` for 1 and 10 hosts without latency); do not edit by hand.",
    `Run ${context.startedAt}, took ${context.durationS.toFixed(0)} s.`,
    "",
    "## What is measured",
    "",
    "- **ssh2 floor**: inside one running Node process, one ssh2 connection per host (host key pinned) and one `true`, all hosts at once.",
    "- **OpenSSH floor**: one `ssh -o BatchMode=yes … true` process per host (known_hosts from the lab), all at once.",
    `- **plan via gRPC host**: Pulumi's real dynamic-provider host (\`pulumi-resource-pulumi-nodejs\`, started fresh for every run and configured before the clock starts), driven over gRPC: Check then Diff for every resource, at most ${context.grpcParallelism} at a time (the engine's default parallelism, 4 × CPUs). The real engine calls Diff one resource after the other unless \`PULUMI_PARALLEL_DIFF=true\` (see the \`pulumi preview\` rows): this row is the plan as the provider host can serve it, not as a default \`pulumi preview\` asks for it.`,
    "- **plan via CLI**: `rootless-docker-net plan --hosts FILE --json --concurrency HOSTS` as a new process, start-up included.",
    `- **pulumi preview**: the real \`pulumi\` CLI (${context.pulumiVersion}, built by \`tools/pulumi/build.ts\`, offline, file backend in a temporary folder) running \`pulumi preview --non-interactive\` of \`bench/pulumi-program.ts\` (compiled to JavaScript; one \`RootlessDockerNetwork\` per host of the CLI row's hosts file, read and validated as the CLI reads it), timed from process start to exit: the engine, the language host, the program and the dynamic-provider host are all included. The language host is the project's own (\`tools/pulumi/language-host.ts\`, a Node process that starts the program with \`@pulumi/pulumi/cmd/run\`, because the Go module proxy does not serve Pulumi's Go one): one Node start more than with Pulumi's host. A TypeScript program run through ts-node would add its compile time on top.`,
    "- **Which Pulumi work is measured**: a preview of resources not yet in the state calls only Check (the engine plans a create without asking more), so it would not run our plan at all. CI previews resources that exist: the engine calls Diff for each, and our Diff reads the host over SSH. Each row's stack is therefore seeded first (not timed) by a real `pulumi up` of the same program while the serialized provider's `require(\"pulumi-rootless-docker/dynamic\")` resolves to `bench/pulumi-seed-provider.ts`, which records the validated inputs as the real create echoes them without connecting: the lab's hosts run no Docker, a real create would start rootless Docker on each and change what the other rows plan. The state then says the inputs were applied; the hosts have no drop-in, so every Diff finds the change the other rows find (the bench fails unless the preview plans an update of every host). Pulumi's own `import` cannot seed a dynamic resource: the engine's import calls Read without inputs, and the dynamic-provider host needs the serialized provider from them.",
    "- **without start-up**: minus the median of `pulumi preview` of the same program declaring no resources, on the same backend, measured in the same row (the Pulumi binary, the backend, the language host and the program's Node process with its modules; no provider host is started for zero resources). **`PULUMI_PARALLEL_DIFF=true`**: the same preview with the engine's switch that runs Diff calls as parallel steps (by default it calls them one after the other); **and `--parallel` = hosts**: with the engine's parallelism also raised from its default to the number of hosts. **Preview of creates** (diagnostic, in the cost breakdown): the same program on a stack with nothing in its state, where the engine calls Check only.",
    "- **Ansible --check**: `ansible-playbook --check --diff` of `bench/ansible/playbook.yml` (drop-in via `template`, then `systemd_service` with `scope: user` and `daemon_reload`), pipelining on, forks = hosts, no fact gathering, Ansible's default ssh_args (ControlPersist) with a fresh ControlPath directory per run so every run starts cold. The lab's hosts have no Python: the bench copies the machine's Python 3.11 into each host first (not timed).",
    "- Every tool plans the same desired state (slirp4netns with IPv6) on hosts booted without Docker and without the drop-in, so every plan finds a change.",
    `- **Latency**: ${context.latencyMethod}`,
    "- **SSH connections per host**: counted on the hosts for the floors and Ansible (sshd's `Accepted publickey` journal lines over all runs, warm-up included, divided by runs × hosts); from the transport's trace for our two paths. **Round trips**: execs from the transport's trace (`ROOTLESS_DOCKER_NET_TRACE`) for our paths, `ssh` invocations (each one command over the multiplexed connection) for Ansible; the floors make exactly one. **Peak memory**: `VmHWM` of the gRPC row's provider host process; for the CLI, `pulumi preview` and Ansible the whole process tree (pulumi with its language host, program and dynamic-provider host; ansible-playbook with its workers and ssh clients, a ControlPersist master leaving the tree once it detaches): the largest sum of `VmRSS` over the tree, sampled from /proc every 10 ms (a cgroup's memory.peak is not used: this machine mounts the memory controller as cgroup v1). A sum of RSS counts pages shared between processes once per process, which weighs most on Ansible's forked workers.",
    "",
    "## Results",
    "",
    tables,
    "",
    "## Targets",
    "",
    `A fleet plan at ≤ ${TARGET_FLOOR_RATIO}× the ssh2 floor and ≥ ${TARGET_ANSIBLE_SPEEDUP}× faster than Ansible's check mode, at every size and latency; \`pulumi preview\` of ${TARGET_PULUMI_HOSTS} hosts ≥ ${TARGET_PULUMI_ANSIBLE_SPEEDUP}× faster than Ansible's check mode, start-up included${context.quick ? ` (not measured by \`--quick\`: its largest fleet is smaller)` : ""}; \`rootless-docker-net --version\` and \`plan --help\` within ${TARGET_STARTUP_OVER_NODE_MS} ms of a bare \`node -e ""\`.`,
    "",
    findings.length === 0 ? "All targets were met." : ["Missed targets, with what the measurements show about the cause:", "", ...findings].join("\n"),
    "",
    "## What the Pulumi engine costs",
    "",
    "Each `pulumi preview` split by the other measurements of its row (medians; the parts are measured separately, so they add up only roughly):",
    "",
    ...engine,
    "",
    "## Machine and versions",
    "",
    "| | |",
    "|---|---|",
    ...context.facts.map(([name, value]) => `| ${name} | ${value} |`),
    "",
  ].join("\n");
}
