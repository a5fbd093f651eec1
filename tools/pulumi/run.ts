/**
 * `npm run pulumi -- ARGS`: the real `pulumi` CLI (built and cached by build.ts) with an offline, project-local
 * environment, in the folder it was started from (an example, the repository root, a test's copy):
 *
 * - a file backend in the checkout (`.pulumi-state/`, or `RDN_PULUMI_STATE_DIR`) and a `PULUMI_HOME` of its own
 *   (`.pulumi-home/`), both ignored by git, so nothing touches the user's `~/.pulumi` or the Pulumi service;
 * - a passphrase secrets provider (the user's `PULUMI_CONFIG_PASSPHRASE` if set);
 * - no update check, no plugin download, no registry look-up;
 * - the `command` provider installed from the built binary, Node.js and the bundled plugins on PATH.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { delimiter, dirname, join, resolve } from "node:path";
import { CHECKOUT, ensureTools, ToolBuildError, type Tools } from "./build";

export const PULUMI_HOME = join(CHECKOUT, ".pulumi-home");
export const DEFAULT_STATE_DIR = join(CHECKOUT, ".pulumi-state");
/** Not a secret: it only keeps the secrets of local, throw-away stacks encrypted in the state files. */
const LOCAL_PASSPHRASE = "pulumi-rootless-docker-local";

export function pulumiEnvironment(tools: Tools, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const stateDir = resolve(base.RDN_PULUMI_STATE_DIR ?? DEFAULT_STATE_DIR);
  mkdirSync(stateDir, { recursive: true });
  mkdirSync(PULUMI_HOME, { recursive: true });
  const env: NodeJS.ProcessEnv = {
    ...base,
    PATH: [tools.binDir, dirname(process.execPath), base.PATH ?? ""].join(delimiter),
    PULUMI_HOME,
    PULUMI_BACKEND_URL: `file://${stateDir}`,
    PULUMI_SKIP_UPDATE_CHECK: "true",
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
    PULUMI_DISABLE_REGISTRY_RESOLVE: "true",
    RDN_PULUMI_LANGUAGE_HOST: join(CHECKOUT, "dist", "tools", "pulumi", "language-host.js"),
  };
  if (env.PULUMI_CONFIG_PASSPHRASE === undefined && env.PULUMI_CONFIG_PASSPHRASE_FILE === undefined) env.PULUMI_CONFIG_PASSPHRASE = LOCAL_PASSPHRASE;
  return env;
}

function run(argv: string[], env: NodeJS.ProcessEnv, cwd: string): Promise<number> {
  return new Promise((done, fail) => {
    const child = spawn(argv[0]!, argv.slice(1), { cwd, env, stdio: "inherit" });
    for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => child.kill(signal));
    child.on("error", fail);
    child.on("close", (code, signal) => done(code ?? (signal === "SIGINT" ? 130 : 143)));
  });
}

/** `pulumi plugin install … --file` once per PULUMI_HOME: the engine then never looks for a download. */
async function installCommandPlugin(tools: Tools, env: NodeJS.ProcessEnv): Promise<void> {
  if (!tools.commandPlugin) return;
  const { version, path } = tools.commandPlugin;
  if (existsSync(join(PULUMI_HOME, "plugins", `resource-command-v${version}`, "pulumi-resource-command"))) return;
  const code = await run([tools.pulumi, "plugin", "install", "resource", "command", version, "--file", path], env, CHECKOUT);
  if (code !== 0) throw new ToolBuildError(`could not install the command plugin from ${path} (pulumi exited ${code})`);
}

function dependencies(dir: string): Record<string, string> {
  const manifest = join(dir, "package.json");
  return existsSync(manifest) ? ((JSON.parse(readFileSync(manifest, "utf8")) as { dependencies?: Record<string, string> }).dependencies ?? {}) : {};
}

async function main(args: string[]): Promise<number> {
  // npm runs scripts in the package root; INIT_CWD is where the person typed the command.
  const cwd = process.env.npm_lifecycle_event === "pulumi" && process.env.INIT_CWD ? process.env.INIT_CWD : process.cwd();
  const tools = await ensureTools([], { verbose: false, buildCommandPlugin: false, commandNeeded: "@pulumi/command" in dependencies(cwd) });
  const env = pulumiEnvironment(tools);
  await installCommandPlugin(tools, env);
  return run([tools.pulumi, ...args], env, cwd);
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: Error) => {
      process.stderr.write(`[pulumi-cli] ${error.message}\n`);
      process.exit(1);
    },
  );
}
