/**
 * The real `pulumi` CLI for tests, with the environment `npm run pulumi` gives it (offline, file backend, own
 * PULUMI_HOME), a state folder per test, and the output kept for assertions.
 */
import { ensureTools, type Tools } from "../../tools/pulumi/build";
import { pulumiEnvironment } from "../../tools/pulumi/run";
import { run, type CommandResult } from "../../lab/exec";

let tools: Promise<Tools> | undefined;

/** The CLI built and cached by tools/pulumi/build.ts (built on first use when the cache has none). */
export function pulumiTools(): Promise<Tools> {
  tools ??= ensureTools([], { verbose: false, buildCommandPlugin: false, commandNeeded: false });
  return tools;
}

/** The environment of `npm run pulumi` with the state kept in `stateDir`. */
export async function pulumiEnv(stateDir: string): Promise<NodeJS.ProcessEnv> {
  return pulumiEnvironment(await pulumiTools(), { ...process.env, RDN_PULUMI_STATE_DIR: stateDir });
}

export interface PulumiOptions {
  cwd: string;
  stateDir: string;
  timeoutMs?: number;
  /** Added to the environment (e.g. how Go programs are built). */
  env?: Record<string, string>;
}

/** Runs `pulumi ARGS` in `cwd`; never throws on a non-zero exit. */
export async function pulumi(args: string[], options: PulumiOptions): Promise<CommandResult> {
  const env = { ...(await pulumiEnv(options.stateDir)), ...options.env };
  return run([(await pulumiTools()).pulumi, ...args], { env, cwd: options.cwd, timeoutMs: options.timeoutMs ?? 10 * 60_000 });
}
