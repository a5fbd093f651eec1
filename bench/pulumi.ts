/**
 * The real `pulumi preview` (the CLI built by tools/pulumi/build.ts, offline, file backend) of
 * bench/pulumi-program.ts in a project folder of the run's own, one stack per row.
 *
 * A preview of resources not yet in the state calls only Check: the engine plans a create without asking the
 * provider anything more. What CI runs is the drift preview of resources that exist, where the engine calls Diff
 * (our plan over SSH) for every one. So each stack's state is seeded first by a real `pulumi up` of the same
 * program, while the shim resolves `pulumi-rootless-docker/dynamic` to bench/pulumi-seed-provider.ts (records the
 * inputs, no SSH), then the name points at the package again for the timed previews: the state says the inputs
 * were applied, the hosts have no drop-in, and every Diff finds the change the other rows find.
 */
import { mkdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pulumiEnv, pulumiTools } from "../tests/helpers/pulumi-cli";
import { TRACE_ENV } from "../provider/transport";
import { BenchError } from "./bench-error";
import { runMeasured } from "./memory";
import { traceCounts, type PlanRun } from "./measure";

const CHECKOUT = join(__dirname, "..", "..");
const PROGRAM = join(__dirname, "pulumi-program.js");
const SEED_PROVIDER = join(__dirname, "pulumi-seed-provider.js");
const PROJECT = "rdn-bench";

export interface PreviewOptions {
  /** `--parallel N` (default: the engine's, 4 × CPUs). */
  parallel?: number;
  /** `PULUMI_PARALLEL_DIFF=true`: Diff calls run as steps, up to the parallelism at once, instead of one at a time. */
  parallelDiff?: boolean;
  /** What the preview must plan for every host: an update (seeded state, drift) or a create (nothing in the state). */
  op?: "update" | "create";
}

export class PulumiBench {
  readonly projectDir: string;
  private readonly stateDir: string;
  private readonly packageLink: string;
  private readonly seedPackage: string;
  private readonly stacks = new Set<string>();

  constructor(workDir: string) {
    this.projectDir = join(workDir, "pulumi-project");
    this.stateDir = join(workDir, "pulumi-state");
    this.packageLink = join(this.projectDir, "node_modules", "pulumi-rootless-docker");
    this.seedPackage = join(workDir, "pulumi-seed-package");
    const modules = join(this.projectDir, "node_modules");
    mkdirSync(join(modules, "@pulumi"), { recursive: true });
    // The program's @pulumi/pulumi and the language host's `cmd/run` resolve to the checkout's single copy.
    symlinkSync(join(CHECKOUT, "node_modules", "@pulumi", "pulumi"), join(modules, "@pulumi", "pulumi"));
    // Compiled JavaScript: a TypeScript program would add ts-node's start-up to every row (see BENCHMARKS.md).
    writeFileSync(join(this.projectDir, "Pulumi.yaml"), `name: ${PROJECT}\nruntime:\n  name: nodejs\n  options:\n    typescript: false\nmain: index.js\n`);
    writeFileSync(join(this.projectDir, "package.json"), JSON.stringify({ name: PROJECT, private: true, main: "index.js" }));
    writeFileSync(join(this.projectDir, "index.js"), `require(${JSON.stringify(PROGRAM)});\n`);
    mkdirSync(this.seedPackage, { recursive: true });
    writeFileSync(join(this.seedPackage, "package.json"), JSON.stringify({ name: "pulumi-rootless-docker", exports: { "./dynamic": "./dynamic.js" } }));
    writeFileSync(join(this.seedPackage, "dynamic.js"), `module.exports = require(${JSON.stringify(SEED_PROVIDER)});\n`);
    this.usePackage(CHECKOUT);
  }

  /** Where the dynamic-provider host (cwd: the project) finds the package the serialized shim requires by name. */
  private usePackage(target: string): void {
    rmSync(this.packageLink, { force: true });
    symlinkSync(target, this.packageLink);
  }

  private async pulumi(args: string[], step: string, env: Record<string, string> = {}) {
    const argv = [(await pulumiTools()).pulumi, ...args, "--non-interactive", "--color", "never"];
    const measured = await runMeasured(argv, { cwd: this.projectDir, env: { ...(await pulumiEnv(this.stateDir)), ...env }, timeoutMs: 10 * 60_000 });
    if (measured.result.exitCode !== 0) {
      throw new BenchError(`pulumi ${args[0]} exited ${measured.result.exitCode}`, `state in ${this.stateDir}, project in ${this.projectDir}`, {
        host: "pulumi",
        step,
        command: argv.join(" "),
        exitCode: measured.result.exitCode,
        evidence: (measured.result.stdout + measured.result.stderr).split("\n").slice(-25),
      });
    }
    return measured;
  }

  /** What `pulumi version` prints, and how long the Go CLI took to start and print it. */
  async version(): Promise<{ version: string; wallMs: number }> {
    const { result, wallMs } = await this.pulumi(["version"], "pulumi version");
    return { version: result.stdout.trim(), wallMs };
  }

  /**
   * A stack of the program over `hostsFile` (null: no resources), its state seeded with every host's resource unless
   * `seed` is false (a preview then plans creates). The same name again replaces the stack.
   */
  async stack(name: string, hostsFile: string | null, seed = true): Promise<string> {
    if (this.stacks.has(name)) await this.pulumi(["stack", "rm", "--yes", "--force", "--stack", name], "remove stack");
    await this.pulumi(["stack", "init", name], "stack init");
    this.stacks.add(name);
    if (hostsFile === null) return name;
    await this.pulumi(["config", "set", "--stack", name, "hostsFile", hostsFile], "config set");
    if (!seed) return name;
    this.usePackage(this.seedPackage);
    try {
      await this.pulumi(["up", "--yes", "--skip-preview", "--stack", name], "seed the state (pulumi up, no SSH)");
    } finally {
      this.usePackage(CHECKOUT);
    }
    return name;
  }

  /**
   * One `pulumi preview` as CI runs it, timed from process start to exit (engine, language host, program and
   * provider host included); memory of the whole process tree; connections and execs from the transport's trace.
   */
  async preview(stack: string, hostCount: number, traceFile: string, options: PreviewOptions = {}): Promise<PlanRun> {
    const { parallel, parallelDiff = false, op = "update" } = options;
    const args = ["preview", "--stack", stack, ...(parallel === undefined ? [] : ["--parallel", String(parallel)])];
    // Without PULUMI_PARALLEL_DIFF the engine calls each Diff inside its step generator, one resource after the other
    // (pkg/resource/deploy/step_generator.go, `diff`: `if !sg.deployment.opts.ParallelDiff`), whatever --parallel says.
    const { result, wallMs, memory } = await this.pulumi(args, "pulumi preview", { [TRACE_ENV]: traceFile, ...(parallelDiff ? { PULUMI_PARALLEL_DIFF: "true" } : {}) });
    const planned = Number(new RegExp(`[~+] (\\d+) to ${op}`).exec(result.stdout)?.[1] ?? "0");
    // The hosts have no drop-in: a drift preview that plans no update for each did not look. A stack with nothing in
    // its state also creates its root resource (pulumi:pulumi:Stack).
    const expected = op === "create" ? hostCount + 1 : hostCount;
    if (planned !== expected) {
      throw new BenchError(`pulumi preview planned ${planned} ${op}(s), expected ${expected}`, "", { host: "pulumi", step: "pulumi preview", evidence: result.stdout.split("\n").slice(-25) });
    }
    return { wallMs, peakRssKiB: memory.peakRssKiB, counts: traceCounts(traceFile, Math.max(hostCount, 1)) };
  }
}
