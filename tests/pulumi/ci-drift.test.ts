/**
 * examples/ci-drift as a user runs it: its GitHub Actions workflow (.github/workflows/drift.yml), step by step as
 * written in the YAML, from a fresh checkout (the repository's files, no node_modules, no dist), against two lab
 * hosts. Each `run:` step goes to bash as the runner starts it (`bash --noprofile --norc -eo pipefail`), in the job's
 * working directory, with the step's env and the test's secrets. The `uses:` steps are what a runner gives: the
 * fresh copy (checkout), this machine's node (setup-node) and the built `pulumi` on PATH with a file backend
 * (setup-pulumi plus the backend login). npm runs offline from the machine's cache: no registry, so no fallback.
 *
 * The stack was deployed before from a second fresh copy (the user's workstation), whose Pulumi.prod.yaml the CI
 * copy gets as a commit would bring it; the CLI job reads hosts.yaml with the lab's hosts, as a user edits it.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parse, stringify } from "yaml";
import type { LabHost } from "../../lab/api";
import { run, type CommandResult } from "../../lab/exec";
import { CHECKOUT } from "../../tools/pulumi/build";
import { pulumiEnvironment } from "../../tools/pulumi/run";
import { DROP_IN, userCommand } from "../helpers/host-state";
import { pulumiTools } from "../helpers/pulumi-cli";

process.env.RDL_LAB = "rdlcidrift";
// Loaded after RDL_LAB is set: the lab picks its instance from the environment.
const { labDown, labUp } = require("../../lab/api") as typeof import("../../lab/api");

const EXAMPLE = "examples/ci-drift";
const WORKFLOW = `${EXAMPLE}/.github/workflows/drift.yml`;
const STACK = "prod";

interface Step {
  name?: string;
  uses?: string;
  run?: string;
  env?: Record<string, string>;
  with?: Record<string, unknown>;
}
interface Job {
  defaults?: { run?: { "working-directory"?: string } };
  steps: Step[];
}

/** The files a checkout of the repository has: tracked and new ones, nothing git ignores (no node_modules, no dist). */
function freshCheckout(destination: string): string {
  mkdirSync(destination, { recursive: true });
  const files = execFileSync("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], { cwd: CHECKOUT, encoding: "utf8" }).split("\0").filter(Boolean);
  for (const file of files) {
    if (!existsSync(join(CHECKOUT, file))) continue; // deleted in the work tree, not yet committed
    mkdirSync(dirname(join(destination, file)), { recursive: true });
    copyFileSync(join(CHECKOUT, file), join(destination, file));
  }
  return destination;
}

/** `${{ secrets.NAME }}` as the runner substitutes it; any other expression is refused (the test would not run it as written). */
function substitute(value: string, secrets: Record<string, string>): string {
  return value.replace(/\$\{\{\s*([^}]*?)\s*\}\}/g, (_all, expression: string) => {
    const secret = /^secrets\.([A-Z0-9_]+)$/.exec(expression);
    assert.ok(secret, `the workflow uses \${{ ${expression} }}, which this test does not provide`);
    return secrets[secret[1]!] ?? "";
  });
}

describe("examples/ci-drift: the workflow's steps as written, from a fresh checkout", { timeout: 2_400_000 }, () => {
  let hosts: LabHost[];
  let work: string;
  let ci: string;
  let runnerEnv: NodeJS.ProcessEnv;
  let jobs: Record<string, Job>;
  const secrets: Record<string, string> = {};

  /** Runs one job's steps in order, as the runner does; the result is the last step's (a failing step ends the job). */
  async function runJob(name: string): Promise<CommandResult & { output: string }> {
    const job = jobs[name];
    assert.ok(job, `the workflow has no job ${name}`);
    const cwd = join(ci, job.defaults?.run?.["working-directory"] ?? ".");
    let env = { ...runnerEnv };
    let output = "";
    let last: CommandResult = { exitCode: 0, stdout: "", stderr: "" };
    for (const [index, step] of job.steps.entries()) {
      if (step.uses) {
        if (step.uses.startsWith("actions/checkout@")) assert.ok(existsSync(join(ci, WORKFLOW)), "the fresh checkout is missing");
        else if (step.uses.startsWith("actions/setup-node@")) assert.ok(step.with?.["node-version"], "setup-node without a node-version");
        else if (step.uses.startsWith("pulumi/setup-pulumi@")) env = pulumiEnvironment(await pulumiTools(), env);
        else assert.fail(`${name}: step ${index + 1} uses ${step.uses}, which this test cannot stand in for`);
        continue;
      }
      assert.ok(step.run, `${name}: step ${index + 1} has neither run nor uses`);
      const script = join(work, `${name}-step-${index + 1}.sh`);
      writeFileSync(script, substitute(step.run, secrets));
      const stepEnv = { ...env, ...Object.fromEntries(Object.entries(step.env ?? {}).map(([key, value]) => [key, substitute(String(value), secrets)])) };
      last = await run(["bash", "--noprofile", "--norc", "-eo", "pipefail", script], { cwd, env: stepEnv, timeoutMs: 15 * 60_000 });
      output += `### ${step.name ?? step.run.split("\n")[0]} (exit ${last.exitCode})\n${last.stdout}${last.stderr}\n`;
      if (last.exitCode !== 0) break;
    }
    return { ...last, output };
  }

  before(async () => {
    await labDown(); // leftovers of an interrupted run
    hosts = await labUp({ hosts: 2, profile: "trixie" });
    work = mkdtempSync(join(tmpdir(), "rdn-ci-drift-"));
    const home = join(work, "home");
    mkdirSync(home);
    const privateKey = readFileSync(hosts[0]!.privateKeyPath, "utf8");
    secrets.DRIFT_SSH_KEY = privateKey.trim();
    secrets.PULUMI_ACCESS_TOKEN = ""; // the file backend needs none
    // A runner's environment: its own HOME (the CLI job writes ~/.ssh there), node on PATH, npm offline from the machine's cache.
    runnerEnv = {
      PATH: [dirname(process.execPath), "/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"].join(":"),
      HOME: home,
      LANG: "C.UTF-8",
      CI: "true",
      GITHUB_ACTIONS: "true",
      npm_config_cache: execFileSync("npm", ["config", "get", "cache"], { encoding: "utf8" }).trim(),
      npm_config_offline: "true",
      RDN_PULUMI_STATE_DIR: join(work, "backend"),
    };

    // The user's workstation: a fresh copy, installed as the example says, the stack deployed once.
    const workstation = freshCheckout(join(work, "workstation"));
    const project = join(workstation, EXAMPLE);
    const npm = await run(["npm", "ci"], { cwd: project, env: runnerEnv, timeoutMs: 15 * 60_000 });
    assert.equal(npm.exitCode, 0, npm.stdout + npm.stderr);
    const env = pulumiEnvironment(await pulumiTools(), runnerEnv);
    const pulumi = async (args: string[], input?: string) => {
      const result = await run(["pulumi", ...args, "--non-interactive"], { cwd: project, env, input, timeoutMs: 15 * 60_000 });
      assert.equal(result.exitCode, 0, `pulumi ${args.join(" ")}:\n${result.stdout}${result.stderr}`);
      return result;
    };
    await pulumi(["stack", "init", STACK]);
    const key = (name: string) => `rootless-docker-ci-drift:${name}`;
    const stackFile = join(project, `Pulumi.${STACK}.yaml`);
    const stack = (parse(readFileSync(stackFile, "utf8")) ?? {}) as { config?: Record<string, unknown> };
    stack.config = { ...stack.config, [key("hosts")]: hosts.map((host) => host.address), [key("hostKeys")]: hosts.map((host) => host.hostPublicKey), [key("user")]: hosts[0]!.user, [key("verifyTarget")]: hosts[0]!.target.ipv6 };
    writeFileSync(stackFile, stringify(stack));
    await pulumi(["config", "set", "--secret", "privateKey", "--stack", STACK], privateKey);
    await pulumi(["up", "--yes", "--stack", STACK]);

    // The CI runner's checkout: the stack's config file and hosts.yaml as the user commits them.
    ci = freshCheckout(join(work, "ci"));
    copyFileSync(stackFile, join(ci, EXAMPLE, `Pulumi.${STACK}.yaml`));
    const hostsFile = join(ci, EXAMPLE, "hosts.yaml");
    const hostsYaml = parse(readFileSync(hostsFile, "utf8")) as { defaults: { verify: { targets: { address: string; tcpPort?: number }[] } }; hosts: { name: string; connection: Record<string, unknown> }[] };
    hostsYaml.defaults.verify.targets = [{ address: hosts[0]!.target.ipv6, tcpPort: hosts[0]!.target.ipv6TcpPort }];
    hostsYaml.hosts = hostsYaml.hosts.map((entry, index) => ({ ...entry, connection: { ...entry.connection, host: hosts[index]!.address, hostKey: hosts[index]!.hostPublicKey } }));
    writeFileSync(hostsFile, stringify(hostsYaml));
    jobs = (parse(readFileSync(join(ci, WORKFLOW), "utf8")) as { jobs: Record<string, Job> }).jobs;
  });

  after(async () => {
    if (hosts) await labDown();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it("the workflow has the two jobs the example documents", () => {
    assert.deepEqual(Object.keys(jobs).sort(), ["cli-plan", "pulumi-preview"]);
  });

  it("pulumi-preview on clean hosts: exit 0, nothing to change", async () => {
    const job = await runJob("pulumi-preview");
    assert.equal(job.exitCode, 0, job.output);
    // The stack and both networks.
    assert.match(job.output, /Resources:\n\s+3 unchanged/, job.output);
    assert.doesNotMatch(job.output, /::error::/, job.output);
  });

  it("npm ci built the package and installed the command from the checkout, not from a registry", () => {
    assert.ok(existsSync(join(ci, "dist", "provider", "index.js")), "npm ci did not build the package");
    assert.equal(realpathSync(join(ci, "node_modules", ".bin", "rootless-docker-net")), join(ci, "dist", "provider", "cli", "main.js"));
  });

  it("cli-plan on clean hosts: exit 0", async () => {
    const job = await runJob("cli-plan");
    assert.equal(job.exitCode, 0, job.output);
    assert.equal(readFileSync(join(runnerEnv.HOME!, ".ssh", "drift_ed25519"), "utf8").trim(), secrets.DRIFT_SSH_KEY);
    assert.doesNotMatch(job.output, /::error::/, job.output);
  });

  it("a hand edit of one host's drop-in fails both jobs, naming the host and the property", async () => {
    const [, drifted] = hosts;
    await userCommand(drifted!, `sed -i 's/ROOTLESSKIT_MTU=65520/ROOTLESSKIT_MTU=1500/' ${DROP_IN}`);
    const drop = await userCommand(drifted!, `cat ${DROP_IN}`);
    assert.match(drop, /MTU=1500/);

    const preview = await runJob("pulumi-preview");
    writeFileSync(join(CHECKOUT, "dist", "ci-drift-pulumi-preview.txt"), preview.output);
    // 7: what the workflow's comment and its ::error:: branch count on.
    assert.equal(preview.exitCode, 7, preview.output);
    assert.match(preview.output, /::error::drift: a host differs from the stack/, preview.output);
    assert.match(preview.output, new RegExp(`~ pulumi-nodejs:dynamic:RootlessDockerNetwork: \\(update\\)\\n\\s+\\[id=${drifted!.user}@${drifted!.address.replace(/\./g, "\\.")}:22/docker\\.service/override\\.conf\\]\\n\\s+\\[urn=[^\\]]*::docker-network-1\\]`), preview.output);
    // The program does not declare mtu (the default 65520 applies): the engine shows the host's value as removed, not "1500 => 65520".
    assert.match(preview.output, /- mtu\s*: 1500\n/, preview.output);
    assert.match(preview.output, /~ 1 to update\n\s+2 unchanged/, preview.output);

    const plan = await runJob("cli-plan");
    writeFileSync(join(CHECKOUT, "dist", "ci-drift-cli-plan.txt"), plan.output);
    assert.equal(plan.exitCode, 2, plan.output);
    assert.match(plan.output, /::error::drift: a host differs from hosts.yaml/, plan.output);
    assert.match(plan.output, new RegExp(`docker-2 \\(${drifted!.user}@${drifted!.address.replace(/\./g, "\\.")}:22\\): DIFFERS\\n[^\\n]*\\n[^\\n]*\\n\\s+DOCKERD_ROOTLESS_ROOTLESSKIT_MTU\\s+mtu\\s+65520\\s+1500\\s`), plan.output);
    assert.match(plan.output, /docker-1 \([^)]*\): IN-SYNC/, plan.output);
  });
});
