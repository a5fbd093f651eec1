/**
 * The real `pulumi` CLI as `npm run pulumi` runs it (tools/pulumi/run.ts: the built CLI, offline, project-local), in a
 * project folder of the checkout, on a stack of the test's own in a state folder of the test's own.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

/** From dist/tests/helpers. */
export const CHECKOUT = resolve(__dirname, "../../..");
const RUNNER = join(CHECKOUT, "dist", "tools", "pulumi", "run.js");

export interface PulumiRun {
  code: number;
  stdout: string;
  stderr: string;
}

export interface StackOptions {
  /** Extra environment for the program (e.g. RDL_LAB for the root project). */
  env?: NodeJS.ProcessEnv;
}

/** One stack of one project folder; `remove()` deletes the stack, its config file and the state folder. */
export class PulumiStack {
  readonly stateDir = mkdtempSync(join(tmpdir(), "rdn-pulumi-state-"));

  constructor(
    readonly dir: string,
    readonly name: string,
    private readonly options: StackOptions = {},
  ) {}

  /** Runs `pulumi ARGS --stack NAME` and returns what it printed; never throws on a non-zero exit. */
  run(args: string[], input?: string): Promise<PulumiRun> {
    const { INIT_CWD: _cwd, npm_lifecycle_event: _event, ...inherited } = process.env;
    const env = {
      ...inherited,
      ...this.options.env,
      RDN_PULUMI_STATE_DIR: this.stateDir,
      // tests/examples.test.ts typechecks every program; here ts-node only transpiles, to spare the loaded machine.
      PULUMI_NODEJS_TRANSPILE_ONLY: "true",
    };
    const argv = [RUNNER, ...args, ...(args[0] === "stack" && args[1] === "init" ? [] : ["--stack", this.name]), "--non-interactive", "--color", "never"];
    return new Promise((done) => {
      const child = execFile(process.execPath, argv, { cwd: this.dir, env, maxBuffer: 64 * 1024 * 1024, timeout: 900_000 }, (error, stdout, stderr) => {
        done({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr });
      });
      child.stdin?.end(input ?? "");
    });
  }

  /** Runs and asserts exit 0, with everything pulumi printed in the failure message. */
  async ok(args: string[], input?: string): Promise<PulumiRun> {
    const result = await this.run(args, input);
    assert.equal(result.code, 0, `pulumi ${args.join(" ")} exited ${result.code}:\n${result.stdout}\n${result.stderr}`);
    return result;
  }

  async init(config: Record<string, string>, secrets: Record<string, string> = {}): Promise<void> {
    await this.ok(["stack", "init", this.name]);
    for (const [key, value] of Object.entries(config)) await this.ok(["config", "set", key, value]);
    // Secret values go through stdin, as a person pipes a key file in: never on a command line.
    for (const [key, value] of Object.entries(secrets)) await this.ok(["config", "set", "--secret", key], value);
  }

  async outputs(showSecrets = false): Promise<Record<string, unknown>> {
    return JSON.parse((await this.ok(["stack", "output", "--json", ...(showSecrets ? ["--show-secrets"] : [])])).stdout) as Record<string, unknown>;
  }

  /** The stack's checkpoint file as the file backend wrote it. */
  stateFile(): string {
    const projects = join(this.stateDir, ".pulumi", "stacks");
    for (const project of readdirSync(projects)) {
      for (const file of readdirSync(join(projects, project))) if (file === `${this.name}.json`) return readFileSync(join(projects, project, file), "utf8");
    }
    throw new Error(`no state file for stack ${this.name} under ${projects}`);
  }

  async remove(): Promise<void> {
    await this.run(["stack", "rm", "--force", "--yes"]);
    rmSync(this.stateDir, { recursive: true, force: true });
  }
}
