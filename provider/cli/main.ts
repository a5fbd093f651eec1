#!/usr/bin/env node
/**
 * `rootless-docker-net`: plan, apply and verify rootless Docker networking on hosts listed in a YAML
 * file (or the test lab), with the same schema, engine and waves as the Pulumi resource.
 */
import type { InputProblem, Validation } from "../core/types";
import { planWaves } from "../core/waves";
import * as realEngine from "../engine";
import { parseCliArgs, USAGE, type CliOptions } from "./args";
import { readHostsFile, resolveHosts, type HostEntry, type HostsDocument, type ResolvedHost } from "./hosts";
import { LAB_DEFAULTS, labHostEntries, readLab } from "./lab";
import { renderReport } from "./render";
import { EXIT, runApply, runPlan, runVerify, type Engine, type Report } from "./run";

export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** Live progress goes to stderr only when a person watches stdout. */
  interactive: boolean;
  engine: Engine;
}

const processIo = (): CliIo => ({
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  interactive: process.stdout.isTTY === true,
  engine: realEngine,
});

/** Runs one command line; resolves to the exit code. */
export async function runCli(argv: readonly string[], io: CliIo = processIo()): Promise<number> {
  if (argv.includes("--help") || argv.includes("-h")) {
    io.stdout(`${USAGE}\n`);
    return EXIT.ok;
  }
  const parsed = parseCliArgs(argv);
  if (!parsed.ok) {
    io.stderr(`rootless-docker-net: ${parsed.message}\n\n${USAGE}\n`);
    return EXIT.error;
  }
  const { options } = parsed;
  const hosts = await loadHosts(options);
  if (!hosts.ok) return reportProblems(io, options.hostsFile ?? "lab", hosts.problems);
  hosts.warnings.forEach((warning) => io.stderr(`warning: ${warning}\n`));

  const started = Date.now();
  const runOptions = {
    engine: io.engine,
    concurrency: options.concurrency,
    onProgress: io.interactive
      ? (host: string, event: string) => io.stderr(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${host}: ${event}\n`)
      : undefined,
  };
  let report: Report;
  switch (options.command) {
    case "plan":
      report = await runPlan(hosts.value, runOptions);
      break;
    case "verify":
      report = await runVerify(hosts.value, runOptions);
      break;
    case "apply": {
      const waves = planWaves(hosts.value.map((host) => host.name), options.waves);
      if (!waves.ok) return reportProblems(io, "command line", waves.problems);
      report = await runApply(hosts.value, waves.value, runOptions);
      break;
    }
  }
  io.stdout(options.json ? `${JSON.stringify(report, null, 2)}\n` : `${renderReport(report)}\n`);
  return report.exitCode;
}

async function loadHosts(options: CliOptions): Promise<Validation<ResolvedHost[]>> {
  const document: Validation<HostsDocument> = options.hostsFile
    ? readHostsFile(options.hostsFile)
    : { ok: true, value: { defaults: LAB_DEFAULTS, hosts: [], baseDir: process.cwd() }, warnings: [] };
  if (!document.ok) return document;
  let lab: HostEntry[] | undefined;
  if (options.lab) {
    const labHosts = await readLab();
    if (!labHosts.ok) return labHosts;
    lab = labHostEntries(labHosts.value);
  }
  const resolved = resolveHosts(document.value, lab);
  if (resolved.ok && resolved.value.length === 0) return { ok: false, problems: [{ property: "hosts", reason: "no hosts to work on" }] };
  return resolved;
}

function reportProblems(io: CliIo, source: string, problems: readonly InputProblem[]): number {
  io.stderr(`rootless-docker-net: ${source}: invalid input, nothing was done:\n${problems.map((problem) => `  ${problem.property}: ${problem.reason}\n`).join("")}`);
  return EXIT.error;
}

if (require.main === module) {
  runCli(process.argv.slice(2)).then(
    (code) => (process.exitCode = code),
    (error: unknown) => {
      process.stderr.write(`rootless-docker-net: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exitCode = EXIT.error;
    },
  );
}
