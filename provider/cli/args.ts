/**
 * Command-line parsing and help for `rootless-docker-net`. Kept free of other modules (and of the engine),
 * so `--version` and `--help` load nothing else. A mistake gets one line and a hint, not the whole usage.
 */
import { closest } from "../core/suggest";
import type { WaveOptions } from "../core/waves";

export const COMMANDS = ["plan", "apply", "verify", "validate", "script"] as const;
export type Command = (typeof COMMANDS)[number];

/** What `script` prints: the remote script the engine would run on one host for that step. */
export const SCRIPT_KINDS = ["facts", "apply", "verify"] as const;
export type ScriptKind = (typeof SCRIPT_KINDS)[number];

export interface CliOptions {
  command: Command;
  /** The YAML hosts file (`-` = standard input); with `lab`, it only supplies defaults and per-host overrides. */
  hostsFile?: string;
  lab: boolean;
  json: boolean;
  /** No progress lines on stderr. */
  quiet: boolean;
  /** Only these hosts, by name. */
  limit?: string[];
  /** Append one JSON line per SSH connection and command to this file. */
  trace?: string;
  concurrency: number;
  waves: WaveOptions;
  /** plan: a unified diff of each file the apply would write. */
  diff: boolean;
  /** script: which script, and for which host (may be omitted when the input has one host). */
  script?: ScriptKind;
  host?: string;
}

/**
 * Each host is one SSH connection that mostly waits on the network, so fleets up to this size are planned in one
 * round (10 lab hosts: 758 ms at 32 against 830 ms at 8, medians of 9) without flooding the machine running the CLI.
 */
export const DEFAULT_CONCURRENCY = 32;

interface OptionSpec {
  name: string;
  short?: string;
  /** The value's placeholder; absent for a flag. */
  value?: string;
  help: string;
  commands: readonly Command[];
}

const HOST_COMMANDS: readonly Command[] = ["plan", "apply", "verify"];

const OPTIONS: readonly OptionSpec[] = [
  { name: "hosts", value: "FILE", help: 'YAML with "hosts:" (name, connection, overrides) and optional "defaults:"; - reads standard input', commands: COMMANDS },
  { name: "lab", help: "the hosts of the test lab (repository checkout only; instance $RDL_LAB); a --hosts file then supplies defaults and overrides by name", commands: COMMANDS },
  { name: "limit", value: "NAME[,NAME]", help: "only these hosts (repeatable)", commands: ["plan", "apply", "verify", "validate"] },
  { name: "host", value: "NAME", help: "the host whose script to print (may be omitted when the hosts file has one host)", commands: ["script"] },
  { name: "json", help: "print one JSON document (schemaVersion 1) on stdout, for every outcome", commands: COMMANDS },
  { name: "diff", help: "with each file the apply would write, a unified diff from what the host has (its content is shown)", commands: ["plan"] },
  { name: "quiet", short: "q", help: "no progress lines on stderr", commands: HOST_COMMANDS },
  { name: "concurrency", value: "N", help: `hosts worked on at the same time (default ${DEFAULT_CONCURRENCY})`, commands: HOST_COMMANDS },
  { name: "batch-size", value: "N", help: "hosts per wave (default: a quarter of the hosts, at least 1)", commands: ["apply"] },
  { name: "max-unavailable", value: "N", help: "hosts restarting at once (instead of --batch-size)", commands: ["apply"] },
  { name: "canary", value: "N", help: "a first wave of N hosts", commands: ["apply"] },
  { name: "trace", value: "FILE", help: "append one JSON line per SSH connection and remote command to FILE", commands: [...HOST_COMMANDS, "script"] },
  { name: "help", short: "h", help: "this help", commands: COMMANDS },
];

const SUMMARIES: Record<Command, string> = {
  plan: "show per host what differs (file / effective / running), capability problems, and what an apply would do (files, daemon-reload, restart, each with the reason); changes nothing",
  apply: "converge the hosts wave by wave, restarting Docker where needed, and verify IPv6 reachability",
  verify: "check IPv6 reachability only; changes nothing",
  validate: "check the hosts file (every problem at once); connects to nothing",
  script:
    "print the shell script the engine would run on one host, to run by hand (ssh HOST sh < script): facts and verify connect to nothing; apply connects, reads the facts and prints the apply script it would run then (nothing when the host is in sync; the verification and any rollback are separate scripts)",
};

const EXIT_CODES: Record<Command, string> = {
  plan: "0 nothing differs; 2 differences found; 1 error (a host unreachable or blocked, invalid input)",
  apply: "0 converged and verified; 2 converged, but IPv6 unreachable on a host; 1 error (a host failed, invalid input)",
  verify: "0 every host reachable; 2 IPv6 unreachable on a host; 1 error (a host could not be checked, invalid input)",
  validate: "0 valid; 1 invalid",
  script: "0 printed (apply: or nothing to run); 1 error (invalid input, the host unreachable or blocked)",
};

export function usage(): string {
  const commands = COMMANDS.map((command) => `  ${command.padEnd(9)} ${SUMMARIES[command]}`).join("\n");
  return `usage: rootless-docker-net COMMAND (--hosts FILE | --lab) [options]

${commands}

  rootless-docker-net help COMMAND    options and exit codes of a command
  rootless-docker-net --version
`;
}

export function commandHelp(command: Command): string {
  const options = OPTIONS.filter((option) => option.commands.includes(command));
  const label = (option: OptionSpec) => `${option.short ? `-${option.short}, ` : ""}--${option.name}${option.value ? ` ${option.value}` : ""}`;
  const width = Math.max(...options.map((option) => label(option).length));
  return `usage: rootless-docker-net ${command}${command === "script" ? ` ${SCRIPT_KINDS.join("|")}` : ""} (--hosts FILE | --lab) [options]

${SUMMARIES[command]}

${options.map((option) => `  ${label(option).padEnd(width)}  ${option.help}`).join("\n")}

exit codes: ${EXIT_CODES[command]}
`;
}

export type ParsedArgs =
  | { kind: "run"; options: CliOptions }
  | { kind: "help"; command?: Command }
  | { kind: "version"; json: boolean }
  | { kind: "error"; message: string; fix: string; command?: Command; json: boolean };

export function parseCliArgs(argv: readonly string[]): ParsedArgs {
  const positionals: string[] = [];
  const values = new Map<string, string[]>();
  const errors: { message: string; fix?: string }[] = [];
  for (let index = 0; index < argv.length; index++) {
    const arg = argv[index];
    if (arg === "--") {
      positionals.push(...argv.slice(index + 1));
      break;
    }
    if (!arg.startsWith("-") || arg === "-") {
      positionals.push(arg);
      continue;
    }
    if (arg === "--version") {
      values.set("version", ["true"]);
      continue;
    }
    const [written, inline] = arg.startsWith("--") ? splitOnce(arg.slice(2), "=") : [arg.slice(1), undefined];
    const spec = arg.startsWith("--") ? OPTIONS.find((option) => option.name === written) : OPTIONS.find((option) => option.short === written);
    if (!spec) {
      errors.push({ message: `unknown option ${arg.split("=")[0]}`, fix: suggestOption(written) });
      continue;
    }
    let value: string | undefined = inline;
    if (spec.value === undefined) {
      if (inline !== undefined) errors.push({ message: `--${spec.name} takes no value (got "${inline}")` });
      value = "true";
    } else if (value === undefined) {
      value = argv[index + 1];
      if (value === undefined || (value.startsWith("-") && value !== "-")) {
        errors.push({ message: `--${spec.name} needs a value: --${spec.name} ${spec.value}` });
        continue;
      }
      index++;
    }
    values.set(spec.name, [...(values.get(spec.name) ?? []), value]);
  }

  const json = values.has("json");
  const first = positionals[0];
  const command = COMMANDS.includes(first as Command) ? (first as Command) : undefined;
  const error = (message: string, fix?: string): ParsedArgs => ({
    kind: "error",
    message,
    fix: fix ?? `see: rootless-docker-net help${command ? ` ${command}` : ""}`,
    ...(command ? { command } : {}),
    json,
  });

  if (values.has("version") && positionals.length === 0) return { kind: "version", json };
  if (first === "help") {
    const topic = positionals[1];
    if (topic === undefined) return { kind: "help" };
    if (!COMMANDS.includes(topic as Command)) return error(`unknown command "${topic}"`, commandFix(topic));
    return { kind: "help", command: topic as Command };
  }
  if (values.has("help")) return { kind: "help", ...(command ? { command } : {}) };
  if (errors.length > 0) return error(errors[0].message, errors[0].fix);
  if (first === undefined) return error("a command is required", `one of ${COMMANDS.join(", ")}; see: rootless-docker-net help`);
  if (!command) return error(`unknown command "${first}"`, commandFix(first));
  const script = command === "script" ? positionals[1] : undefined;
  if (command === "script" && !SCRIPT_KINDS.includes(script as ScriptKind)) {
    const near = script === undefined ? undefined : closest(script, SCRIPT_KINDS);
    return error(script === undefined ? "script needs the step: facts, apply or verify" : `unknown script "${script}"`, `${near ? `did you mean "${near}"? ` : ""}rootless-docker-net script ${SCRIPT_KINDS.join("|")} --hosts FILE --host NAME`);
  }
  const positionalCount = command === "script" ? 2 : 1;
  if (positionals.length > positionalCount) return error(`unexpected argument "${positionals[positionalCount]}"`);
  const misplaced = [...values.keys()].find((name) => name !== "version" && !OPTIONS.find((option) => option.name === name)!.commands.includes(command));
  if (misplaced) {
    // `plan --host FILE` is a typo of --hosts, not a request for script's --host: say so.
    const near = closest(misplaced, OPTIONS.filter((option) => option.commands.includes(command)).map((option) => option.name));
    return error(`--${misplaced} does not apply to ${command}`, `${near ? `did you mean --${near}? ` : ""}see: rootless-docker-net help ${command}`);
  }
  if (values.has("version")) return error("--version takes no command", "run: rootless-docker-net --version");

  const hosts = values.get("hosts");
  if (hosts && hosts.length > 1) return error("--hosts is given twice", "name one hosts file");
  if (!hosts && !values.has("lab")) return error("say which hosts: --hosts FILE (or - for standard input) or --lab");

  const numbers: Record<string, number | undefined> = {};
  for (const flag of ["concurrency", "batch-size", "max-unavailable", "canary"]) {
    const text = values.get(flag)?.at(-1);
    if (text === undefined) continue;
    const value = Number(text);
    const minimum = flag === "canary" ? 0 : 1;
    if (!/^\d+$/.test(text) || value < minimum) return error(`--${flag} must be a whole number${minimum ? " ≥ 1" : ""} (got "${text}")`);
    numbers[flag] = value;
  }
  const limit = values.get("limit")?.flatMap((list) => list.split(",")).map((name) => name.trim());
  if (limit?.some((name) => name === "")) return error("--limit has an empty name", "--limit NAME[,NAME], e.g. --limit docker-1,docker-2");
  const trace = values.get("trace")?.at(-1);
  const host = values.get("host");
  if (host && host.length > 1) return error("--host is given twice", "name one host: --host NAME");
  return {
    kind: "run",
    options: {
      command,
      ...(hosts ? { hostsFile: hosts[0] } : {}),
      lab: values.has("lab"),
      json,
      quiet: values.has("quiet"),
      ...(limit ? { limit: [...new Set(limit)] } : {}),
      ...(trace ? { trace } : {}),
      concurrency: numbers.concurrency ?? DEFAULT_CONCURRENCY,
      waves: { batchSize: numbers["batch-size"], maxUnavailable: numbers["max-unavailable"], canary: numbers.canary },
      diff: values.has("diff"),
      ...(script ? { script: script as ScriptKind } : {}),
      ...(host ? { host: host[0] } : {}),
    },
  };
}

function splitOnce(text: string, separator: string): [string, string | undefined] {
  const at = text.indexOf(separator);
  return at < 0 ? [text, undefined] : [text.slice(0, at), text.slice(at + 1)];
}

function suggestOption(written: string): string {
  const names = [...OPTIONS.map((option) => option.name), "version"];
  const near = names.find((name) => written.length >= 3 && name.startsWith(written)) ?? closest(written, names);
  return near ? `did you mean --${near}? (see: rootless-docker-net help)` : "see: rootless-docker-net help";
}

function commandFix(written: string): string {
  const near = closest(written, COMMANDS);
  return near ? `did you mean "${near}"? (commands: ${COMMANDS.join(", ")})` : `commands: ${COMMANDS.join(", ")}`;
}
