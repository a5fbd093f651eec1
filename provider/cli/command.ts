/**
 * One CLI command over the Node API (the same functions, so `--json` prints exactly what the API returns), with
 * progress on stderr and the report on stdout.
 */
import { join } from "node:path";
import { apply, failed, plan, script, validate, verify, type DocumentBase, type FailedDocument, type HostsInput, type ScriptDocument, type ValidateDocument } from "../api";
import { TRACE_ENV } from "../transport/trace";
import type { CliOptions } from "./args";
import type { HostEntry } from "./hosts";
import type { CliIo } from "./main";
import { createProgress } from "./progress";
import { renderReport } from "./render";
import type { Report } from "./run";

/** What the CLI needs of lab/cli-hosts.ts (repository checkout only). */
interface LabModule {
  LAB_DEFAULTS: Record<string, unknown>;
  readLab(): Promise<{ ok: true; value: Parameters<LabModule["labHostEntries"]>[0] } | { ok: false; problems: { property: string; reason: string }[] }>;
  labHostEntries(hosts: readonly unknown[]): HostEntry[];
}

export async function runCommand(options: CliOptions, io: CliIo): Promise<number> {
  // The transport reads the trace file's name from the environment, in this process and in any it starts.
  if (options.trace) process.env[TRACE_ENV] = options.trace;
  let input: HostsInput | undefined = options.hostsFile;
  let lab: HostEntry[] | undefined;
  let document: DocumentBase;
  if (options.lab) {
    const loaded = await loadLab();
    if (!loaded.ok) return print(failed(options.command, loaded.problems, "--lab"), options, io);
    lab = loaded.hosts;
    input ??= { defaults: loaded.defaults, hosts: [] };
  }
  const progress = options.quiet || options.command === "validate" || options.command === "script" ? undefined : createProgress({ write: io.stderr, live: io.interactive });
  const common = {
    ...(options.limit ? { limit: options.limit } : {}),
    ...(lab ? { lab } : {}),
    ...(io.engine ? { engine: io.engine } : {}),
    ...(io.env ? { env: io.env } : {}),
    concurrency: options.concurrency,
    ...(progress ? { onProgress: progress.onProgress } : {}),
  };
  try {
    switch (options.command) {
      case "validate":
        document = validate(input!, common);
        break;
      case "plan":
        document = await plan(input!, { ...common, diff: options.diff });
        break;
      case "script":
        document = await script(input!, options.script!, { ...common, ...(options.host ? { host: options.host } : {}) });
        break;
      case "verify":
        document = await verify(input!, common);
        break;
      case "apply":
        document = await apply(input!, { ...common, ...options.waves });
        break;
    }
  } finally {
    progress?.end();
  }
  return print(document, options, io);
}

function print(document: DocumentBase, options: CliOptions, io: CliIo): number {
  if (options.json) {
    io.stdout(`${JSON.stringify(document, null, 2)}\n`);
    return document.exitCode;
  }
  for (const warning of document.warnings) io.stderr(`warning: ${warning.name ? `${warning.name}: ` : ""}${warning.message}\n`);
  if (isFailed(document)) {
    const lines = document.errors.map((error) => {
      const property = error.property ?? "";
      const reason = error.message.slice(property.length + 2);
      // A problem of the file as a whole (not YAML, unreadable) is named by the file already.
      const place = property === error.file ? "" : `${property}${error.name ? ` (${error.name})` : ""}: `;
      return `  ${place}${reason}${error.fix ? `: ${error.fix}` : ""}`;
    });
    const source = document.errors[0]?.file ?? "input";
    io.stderr(`rootless-docker-net: ${source}: invalid input, nothing was done:\n${lines.join("\n")}\n`);
  } else if (document.command === "script") {
    // stdout holds the script alone, so it can be piped or saved as it is; what it is goes to stderr.
    const printed = document as ScriptDocument | FailedDocument;
    if ("script" in printed) {
      if (printed.script !== null) io.stdout(printed.script);
      io.stderr(`rootless-docker-net: ${printed.step} script for ${printed.name} (${printed.host}): ${printed.note}\n`);
    } else {
      for (const error of printed.errors) {
        const where = error.name === null ? "" : `${error.name}${error.host ? ` (${error.host})` : ""}: `;
        io.stderr(`rootless-docker-net: ${where}${error.step}: ${error.message}\n  fix: ${error.fix}\n`);
      }
    }
  } else if (document.command === "validate") {
    const hosts = (document as ValidateDocument).hosts;
    io.stdout(`validate: ${hosts.length} host(s) valid: ${hosts.map((host) => `${host.name} (${host.host})`).join(", ")}\n`);
  } else {
    io.stdout(`${renderReport({ ...document, command: document.command } as unknown as Report)}\n`);
  }
  return document.exitCode;
}

const isFailed = (document: DocumentBase): document is FailedDocument => document.errors.some((error) => error.type === "InputError");

async function loadLab(): Promise<{ ok: true; hosts: HostEntry[]; defaults: Record<string, unknown> } | { ok: false; problems: { property: string; reason: string; fix?: string }[] }> {
  let lab: LabModule;
  try {
    // dist/provider/cli → dist/lab: present in a repository checkout after npm run build, absent from the package.
    lab = require(join(__dirname, "../../lab/cli-hosts"));
  } catch {
    return { ok: false, problems: [{ property: "--lab", reason: "the lab is part of the repository checkout, not of the installed package", fix: "run it from a checkout after npm run build" }] };
  }
  const hosts = await lab.readLab();
  if (!hosts.ok) return hosts;
  return { ok: true, hosts: lab.labHostEntries(hosts.value), defaults: lab.LAB_DEFAULTS };
}
