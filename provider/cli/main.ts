#!/usr/bin/env node
/**
 * `rootless-docker-net`: plan, apply and verify rootless Docker networking on hosts listed in a YAML
 * file (or the test lab), with the same schema, engine and waves as the Pulumi resource. This file loads only
 * the argument parser: `--version` and `--help` answer without loading the engine, zod or ssh2.
 */
import { commandHelp, parseCliArgs, usage } from "./args";
import type { Engine } from "./run";

export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** stderr is a terminal: progress keeps a live status line. */
  interactive: boolean;
  /** The engine to run hosts with (default: the real one, loaded when needed). */
  engine?: Engine;
  /** Standard input's environment: `${NAME}` in paths, SSH_AUTH_SOCK (default `process.env`). */
  env?: Readonly<Record<string, string | undefined>>;
}

const processIo = (): CliIo => ({
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  interactive: process.stderr.isTTY === true,
});

/** Runs one command line; resolves to the exit code. */
export async function runCli(argv: readonly string[], io: CliIo = processIo()): Promise<number> {
  const parsed = parseCliArgs(argv);
  switch (parsed.kind) {
    case "version": {
      const { VERSION } = await import("../version");
      io.stdout(parsed.json ? `${JSON.stringify({ schemaVersion: 1, tool: { name: "rootless-docker-net", version: VERSION } })}\n` : `rootless-docker-net ${VERSION}\n`);
      return 0;
    }
    case "help":
      io.stdout(parsed.command ? commandHelp(parsed.command) : usage());
      return 0;
    case "error": {
      if (parsed.json) {
        const { failed } = await import("../api");
        const document = failed(parsed.command ?? null, [{ property: "command line", reason: parsed.message, fix: parsed.fix }], "rootless-docker-net", "usage");
        io.stdout(`${JSON.stringify(document, null, 2)}\n`);
      }
      io.stderr(`rootless-docker-net: ${parsed.message}\n  ${parsed.fix}\n`);
      return 1;
    }
    case "run":
      return (await import("./command")).runCommand(parsed.options, io);
  }
}

if (require.main === module) {
  runCli(process.argv.slice(2)).then(
    (code) => (process.exitCode = code),
    (error: unknown) => {
      process.stderr.write(`rootless-docker-net: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exitCode = 1;
    },
  );
}
