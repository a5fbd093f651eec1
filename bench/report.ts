/** The benchmark's table (printed and written to BENCHMARKS.md), its targets and the investigation of misses. */

export interface PlanResult {
  wallMs: number;
  peakRssKiB: number;
  connectionsPerHost: number;
  roundTripsPerHost: number;
}

export interface Row {
  hosts: number;
  latencyMs: number;
  ssh2Floor: { wallMs: number; connectionsPerHost: number };
  opensshFloor: { wallMs: number; connectionsPerHost: number };
  grpc: PlanResult;
  /** Median of the same fleet planned a second time by the same provider host (warm): evidence, not a column. */
  grpcWarmMs: number;
  /** ssh2 floor with the provider's facts script instead of `true`: the plan's remote work without the provider. */
  ssh2FactsScriptMs: number;
  cli: PlanResult;
  ansible: { wallMs: number; connectionsPerHost: number; roundTripsPerHost: number };
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
}

export interface Context {
  quick: boolean;
  runs: number;
  grpcParallelism: number;
  latencyMethod: string;
  facts: [string, string][];
  startup: StartupCosts;
  startedAt: string;
  durationS: number;
}

export const TARGET_FLOOR_RATIO = 1.5;
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

export function renderTables(rows: readonly Row[], context: Context): string {
  const times = [
    `| hosts | latency (one way) | ssh2 floor | OpenSSH floor | plan via gRPC host | plan via CLI | Ansible --check | plan ÷ ssh2 floor (gRPC / CLI) | Ansible ÷ plan (gRPC / CLI) | ≤ ${TARGET_FLOOR_RATIO}× floor (gRPC / CLI) | ≥ ${TARGET_ANSIBLE_SPEEDUP}× faster than Ansible (gRPC / CLI) |`,
    "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ...rows.map((row) => {
      const [grpc, cli] = verdicts(row);
      return `| ${row.hosts} | ${row.latencyMs} ms | ${ms(row.ssh2Floor.wallMs)} | ${ms(row.opensshFloor.wallMs)} | ${ms(row.grpc.wallMs)} | ${ms(row.cli.wallMs)} | ${ms(row.ansible.wallMs)} | ${ratio(grpc.floorRatio)} / ${ratio(cli.floorRatio)} | ${ratio(grpc.ansibleSpeedup)} / ${ratio(cli.ansibleSpeedup)} | ${met(grpc.floorMet)} / ${met(cli.floorMet)} | ${met(grpc.ansibleMet)} / ${met(cli.ansibleMet)} |`;
    }),
  ];
  const counts = [
    "| hosts | latency | SSH connections per host (ssh2 floor / OpenSSH floor / gRPC / CLI / Ansible) | round trips (execs) per host (gRPC / CLI / Ansible) | peak RSS (gRPC provider host / CLI process) |",
    "|---:|---:|---|---|---|",
    ...rows.map(
      (row) =>
        `| ${row.hosts} | ${row.latencyMs} ms | ${[row.ssh2Floor, row.opensshFloor, row.grpc, row.cli, row.ansible].map((tool) => perHost(tool.connectionsPerHost)).join(" / ")} | ${[row.grpc, row.cli, row.ansible].map((tool) => perHost(tool.roundTripsPerHost)).join(" / ")} | ${mib(row.grpc.peakRssKiB)} / ${mib(row.cli.peakRssKiB)} |`,
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
  for (const [command, , overMs] of startupRows(context.startup)) {
    if (overMs !== null && overMs > TARGET_STARTUP_OVER_NODE_MS) {
      findings.push(`- ${command} starts ${ms(overMs)} after a bare Node (target ≤ ${TARGET_STARTUP_OVER_NODE_MS} ms): it loads more than the argument parser (tests/unit/cli-startup.test.ts lists what it must not load).`);
    }
  }
  return findings;
}

export function renderMarkdown(tables: string, findings: readonly string[], context: Context): string {
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
    `- **plan via gRPC host**: Pulumi's real dynamic-provider host (\`pulumi-resource-pulumi-nodejs\`, started fresh for every run and configured before the clock starts), driven over gRPC as the engine does in a preview: Check then Diff for every resource, at most ${context.grpcParallelism} at a time (the engine's default, 4 × CPUs).`,
    "- **plan via CLI**: `rootless-docker-net plan --hosts FILE --json --concurrency HOSTS` as a new process, start-up included.",
    "- **Ansible --check**: `ansible-playbook --check --diff` of `bench/ansible/playbook.yml` (drop-in via `template`, then `systemd_service` with `scope: user` and `daemon_reload`), pipelining on, forks = hosts, no fact gathering, Ansible's default ssh_args (ControlPersist) with a fresh ControlPath directory per run so every run starts cold. The lab's hosts have no Python: the bench copies the machine's Python 3.11 into each host first (not timed).",
    "- Every tool plans the same desired state (slirp4netns with IPv6) on hosts booted without Docker and without the drop-in, so every plan finds a change.",
    `- **Latency**: ${context.latencyMethod}`,
    "- **SSH connections per host**: counted on the hosts for the floors and Ansible (sshd's `Accepted publickey` journal lines over all runs, warm-up included, divided by runs × hosts); from the transport's trace for our two paths. **Round trips**: execs from the transport's trace (`ROOTLESS_DOCKER_NET_TRACE`) for our paths, `ssh` invocations (each one command over the multiplexed connection) for Ansible; the floors make exactly one. **Peak RSS**: `VmHWM` of the provider host's node process; `/usr/bin/time -f %M` of the CLI process.",
    "",
    "## Results",
    "",
    tables,
    "",
    "## Targets",
    "",
    `A fleet plan at ≤ ${TARGET_FLOOR_RATIO}× the ssh2 floor and ≥ ${TARGET_ANSIBLE_SPEEDUP}× faster than Ansible's check mode, at every size and latency; \`rootless-docker-net --version\` and \`plan --help\` within ${TARGET_STARTUP_OVER_NODE_MS} ms of a bare \`node -e ""\`.`,
    "",
    findings.length === 0 ? "All targets were met." : ["Missed targets, with what the measurements show about the cause:", "", ...findings].join("\n"),
    "",
    "## Machine and versions",
    "",
    "| | |",
    "|---|---|",
    ...context.facts.map(([name, value]) => `| ${name} | ${value} |`),
    "",
  ].join("\n");
}
