/**
 * The Node API: `validate`, `plan`, `apply` and `verify` over a hosts file (or the same structure as an object),
 * for scripts that do not use Pulumi. The CLI is a thin layer over these functions, so each returns exactly the
 * document `rootless-docker-net COMMAND --json` prints. Loading this module loads neither `@pulumi/pulumi` nor
 * the SSH stack: the engine is required on the first call that needs it.
 */
import { hostLabel } from "./core/label";
import { planWaves, type WaveOptions } from "./core/waves";
import type { InputProblem } from "./core/types";
import { checkHostsDocument, readHostsFile, resolveHosts, type HostEntry, type ResolvedHost } from "./cli/hosts";
import {
  runApply,
  runPlan,
  runVerify,
  type ApplyReport,
  type Engine,
  type ErrorSummary,
  type PlanReport,
  summarize,
  type ProgressEvent,
  type VerifyReport,
} from "./cli/run";
import { VERSION } from "./version";

export type { ApplyRow, ApplyStatus, ErrorSummary, PlanRow, PlanStatus, ProgressEvent, VerifyRow, VerifyStatus } from "./cli/run";
export type { HostEntry } from "./cli/hosts";
export type { WaveOptions } from "./core/waves";

/** The version of the documents' shape; it changes only when a field is removed or changes meaning. */
export const SCHEMA_VERSION = 1;

/** Hosts to work on: the path of a hosts file (YAML, as the CLI reads it), or its content as an object. */
export type HostsInput =
  | string
  | {
      /** `RootlessDockerNetwork` inputs shared by every host. */
      defaults?: Record<string, unknown>;
      /** Each host: a `name` and its own inputs, merged over `defaults` mapping by mapping. */
      hosts: HostEntry[];
      /** Where relative `privateKeyPath`s are resolved (default: the working directory). */
      baseDir?: string;
    };

/** Options of every Node API call. */
export interface RunOptions {
  /** Only these hosts, by name (every name must exist). */
  limit?: readonly string[];
  /** Hosts worked on at the same time (default 32). */
  concurrency?: number;
  /** Called as each host starts and finishes and as each wave starts and ends. */
  onProgress?: (event: ProgressEvent) => void;
  /** Variables for `${NAME}` in paths and `privateKeyEnv` (default `process.env`). */
  env?: Readonly<Record<string, string | undefined>>;
  /** @internal The test lab's hosts (the CLI's `--lab`): the hosts input then holds defaults and overrides by name. */
  lab?: readonly HostEntry[];
  /** @internal Another engine (tests). */
  engine?: Engine;
}

/** Options of `apply`: the run's and how to split it into waves. */
export interface ApplyOptions extends RunOptions, WaveOptions {}

/** Options of `plan`. */
export interface PlanOptions extends RunOptions {
  /** Add to each file the apply would write a unified diff from the host's content (`plan --diff`). */
  diff?: boolean;
}

/** A warning: which host it concerns (null: the input as a whole) and what to know. */
export interface ReportWarning {
  /** The host's name in the hosts file; null for the input as a whole. */
  name: string | null;
  /** What to know, e.g. that a host key is not checked. */
  message: string;
}

/** An error of any kind (usage, input, host), with the host's name in the hosts file when it concerns one. */
export interface ReportError extends ErrorSummary {
  /** The host's `name` in the hosts file; null for the command line and the file as a whole. */
  name: string | null;
  /** For input errors: the hosts file (`standard input`, `hosts` for an object, `--lab`). */
  file?: string;
  /** For input errors: where in it (`defaults.networkDriver`, `hosts[1].connection.port`); `message` starts with it. */
  property?: string;
}

/** The fields every document has. */
export interface DocumentBase {
  /** The shape's version (`SCHEMA_VERSION`): it changes only when a field is removed or changes meaning. */
  schemaVersion: typeof SCHEMA_VERSION;
  /** What wrote the document. */
  tool: {
    /** Always `rootless-docker-net` (the Node API writes the same documents). */
    name: "rootless-docker-net";
    /** The package's version. */
    version: string;
  };
  /** null when the command line named no valid command. */
  command: "plan" | "apply" | "verify" | "validate" | "script" | null;
  /** exitCode === 0. */
  ok: boolean;
  /** The CLI's exit code: 0 ok; 2 differences (plan) or IPv6 unreachable (apply, verify); 1 error. */
  exitCode: number;
  /** Every warning: of the input, of each host's connection and plan. */
  warnings: ReportWarning[];
  /** Every error: usage, input, and each failed host's. Empty when nothing failed. */
  errors: ReportError[];
}

/** What `plan` returns (and `rootless-docker-net plan --json` prints): a row per host and a summary. */
export type PlanDocument = DocumentBase & Omit<PlanReport, "command" | "exitCode"> & {
  /** The command that wrote it. */
  command: "plan";
};
/** What `apply` returns (and `apply --json` prints): the waves, the outcome, a row per host. */
export type ApplyDocument = DocumentBase & Omit<ApplyReport, "command" | "exitCode"> & {
  /** The command that wrote it. */
  command: "apply";
};
/** What `verify` returns (and `verify --json` prints): a row per host. */
export type VerifyDocument = DocumentBase & Omit<VerifyReport, "command" | "exitCode"> & {
  /** The command that wrote it. */
  command: "verify";
};
/** What `validate` returns (and `validate --json` prints): the hosts, or every input problem. */
export type ValidateDocument = DocumentBase & {
  /** The command that wrote it. */
  command: "validate";
  /** The hosts that would be worked on, with their `user@host:port`. */
  hosts: {
    /** The host's name in the hosts file. */
    name: string;
    /** `user@host:port`. */
    host: string;
  }[];
};
/** What `script` returns (and `script STEP --json` prints). */
export type ScriptDocument = DocumentBase & {
  /** The command that wrote it. */
  command: "script";
  /** The host it is for: its name in the hosts file. */
  name: string;
  /** The host's `user@host:port`. */
  host: string;
  /** Which step's script. */
  step: "facts" | "apply" | "verify";
  /** The script, exactly as the engine would run it with /bin/sh; null when an apply would run none (the host is in sync). */
  script: string | null;
  /** What running it does, and how. */
  note: string;
};
/** What a command that could not start returns (invalid input, or a bad command line in the CLI). */
export type FailedDocument = DocumentBase & {
  /** Always false. */
  ok: false;
  /** Always 1. */
  exitCode: 1;
};

/**
 * Checks the hosts and their inputs without connecting anywhere: every problem at once, where it is written.
 *
 * @example
 * ```ts
 * import { validate } from "pulumi-rootless-docker";
 *
 * const checked = validate("hosts.yaml");
 * for (const error of checked.errors) console.error(`${error.property ?? error.file}: ${error.message} ${error.fix}`);
 * console.log(checked.hosts.map((host) => `${host.name} ${host.host}`));
 * ```
 */
export function validate(input: HostsInput, options: RunOptions = {}): ValidateDocument {
  const hosts = resolve(input, options);
  if (!hosts.ok) return { ...failed("validate", hosts.problems, hosts.source), hosts: [] } as ValidateDocument;
  return {
    ...base("validate", 0, hosts.warnings, []),
    hosts: hosts.value.map(({ name, spec }) => ({ name, host: hostLabel(spec.connection) })),
  };
}

/**
 * Reads every host and reports what differs (file / effective / running) and what would block an apply. Changes nothing.
 *
 * @example
 * ```ts
 * import { plan } from "pulumi-rootless-docker";
 *
 * const result = await plan("hosts.yaml", { limit: ["docker-1"], onProgress: (event) => console.error(event.type) });
 * if (!("hosts" in result)) throw new Error(result.errors.map((error) => error.message).join("\n"));
 * for (const row of result.hosts) {
 *   console.log(row.name, row.status, row.changes.map((change) => `${change.input ?? change.property}: ${change.actual} -> ${change.desired}`));
 * }
 * console.log(`an apply would restart: ${result.summary.restart.join(", ") || "none"}`);
 * process.exitCode = result.exitCode; // 0 in sync, 2 differs, 1 error
 * ```
 */
export async function plan(input: HostsInput, options: PlanOptions = {}): Promise<PlanDocument | FailedDocument> {
  const hosts = resolve(input, options);
  if (!hosts.ok) return failed("plan", hosts.problems, hosts.source);
  const report = await runPlan(hosts.value, { ...runOptions(options), diff: options.diff === true });
  return document(report, hosts.warnings, report.hosts);
}

/**
 * Converges the hosts wave by wave (a wave starts when the previous one applied and verified) and verifies each.
 *
 * @example
 * ```ts
 * import { apply } from "pulumi-rootless-docker";
 *
 * const result = await apply("hosts.yaml", { batchSize: 2, canary: true });
 * if (!("hosts" in result)) throw new Error(result.errors.map((error) => error.message).join("\n"));
 * for (const row of result.hosts) console.log(row.name, `wave ${row.wave}`, row.status, row.restarted ? "restarted" : "", row.error?.fix ?? "");
 * if (result.stoppedAtWave !== undefined) console.error(`stopped at wave ${result.stoppedAtWave}`);
 * ```
 */
export async function apply(input: HostsInput, options: ApplyOptions = {}): Promise<ApplyDocument | FailedDocument> {
  const hosts = resolve(input, options);
  if (!hosts.ok) return failed("apply", hosts.problems, hosts.source);
  const waves = planWaves(hosts.value.map((host) => host.name), { batchSize: options.batchSize, maxUnavailable: options.maxUnavailable, canary: options.canary });
  if (!waves.ok) return failed("apply", waves.problems, "waves");
  const report = await runApply(hosts.value, waves.value, runOptions(options));
  return document(report, hosts.warnings, report.hosts);
}

/**
 * Checks IPv6 reachability from each host's RootlessKit namespace (and bridge container when managed). Changes nothing.
 *
 * @example
 * ```ts
 * import { verify } from "pulumi-rootless-docker";
 *
 * const result = await verify({
 *   defaults: { networkDriver: "pasta", ipv6: true, connection: { user: "ci", agentSocketPath: "/run/ci/agent.sock" } },
 *   hosts: [{ name: "docker-1", connection: { host: "192.0.2.11", hostKey: "ssh-ed25519 AAAA…" } }],
 * });
 * if (!("hosts" in result)) throw new Error(result.errors.map((error) => error.message).join("\n"));
 * for (const row of result.hosts) console.log(row.name, row.status, row.verification?.diagnosis, row.verification?.rttMs);
 * ```
 */
export async function verify(input: HostsInput, options: RunOptions = {}): Promise<VerifyDocument | FailedDocument> {
  const hosts = resolve(input, options);
  if (!hosts.ok) return failed("verify", hosts.problems, hosts.source);
  const report = await runVerify(hosts.value, runOptions(options));
  return document(report, hosts.warnings, report.hosts);
}

/** Options of `script`. */
export interface ScriptOptions extends RunOptions {
  /** The host's name in the hosts file; may be omitted when there is one host. */
  host?: string;
}

/**
 * The shell script the engine would run on one host for `step`, to run by hand (`ssh HOST sh < script`). `facts` and
 * `verify` depend only on the inputs; `apply` connects, reads the facts and plans, as an apply does, and returns the
 * apply script it would then run (null when the host is in sync). Changes nothing.
 *
 * @example
 * ```ts
 * import { writeFileSync } from "node:fs";
 * import { script } from "pulumi-rootless-docker";
 *
 * const facts = await script("hosts.yaml", "facts", { host: "docker-1" });
 * if (!("script" in facts) || facts.script === null) throw new Error(facts.errors.map((error) => error.message).join("\n"));
 * writeFileSync("facts.sh", facts.script); // then: ssh dev@docker-1 sh < facts.sh
 * ```
 */
export async function script(input: HostsInput, step: ScriptDocument["step"], options: ScriptOptions = {}): Promise<ScriptDocument | FailedDocument> {
  const hosts = resolve(input, options);
  if (!hosts.ok) return failed("script", hosts.problems, hosts.source);
  const names = hosts.value.map((host) => host.name);
  const chosen = options.host === undefined && hosts.value.length === 1 ? hosts.value[0] : hosts.value.find((host) => host.name === options.host);
  if (chosen === undefined) {
    const reason = options.host === undefined ? `--host is required: the input has ${names.length} hosts, say which one` : `--host: no host named "${options.host}"`;
    return failed("script", [{ property: "--host", reason, fix: `one of: ${names.join(", ")}` }], "command line", "usage");
  }
  const engine = require("./engine") as ScriptEngine;
  const label = hostLabel(chosen.spec.connection);
  const run = `run it as ${chosen.spec.connection.user}: ssh -p ${chosen.spec.connection.port} ${chosen.spec.connection.user}@${chosen.spec.connection.host} sh < script.sh`;
  const done = (text: string | null, note: string, warnings: ReportWarning[] = []) =>
    ({ ...base("script", 0, [...hosts.warnings, ...warnings], []), name: chosen.name, host: label, step, script: text, note }) as ScriptDocument;
  if (step === "facts") return done(engine.factsScriptFor(chosen.spec), `reads the host and changes nothing; ${run}`);
  if (step === "verify") return done(engine.verifyScriptFor(chosen.spec), `probes IPv6 from the RootlessKit namespace${chosen.spec.containerIpv6 ? " and a bridge container" : ""} and changes nothing; ${run}`);
  const warnings: ReportWarning[] = [];
  try {
    const planned = await engine.applyScriptFor(chosen.spec, { onWarning: (message) => warnings.push({ name: chosen.name, message }) });
    if (planned.script === null) return done(null, "the host is in sync: an apply would run no script", warnings);
    return done(planned.script, `the apply for the facts read just now (its compare-and-swap refuses to run once the host changed: print it again then); it writes, reloads and restarts as the plan says, then reads the facts again; ${run}`, warnings);
  } catch (error) {
    const summary = summarize(error);
    return { ...base("script", 1, [...hosts.warnings, ...warnings], [{ ...summary, name: chosen.name }]) } as FailedDocument;
  }
}

/** The engine's script builders (`provider/engine`). */
interface ScriptEngine {
  factsScriptFor(spec: ResolvedHost["spec"]): string;
  verifyScriptFor(spec: ResolvedHost["spec"]): string;
  applyScriptFor(spec: ResolvedHost["spec"], opts: { onWarning?: (message: string) => void }): Promise<{ script: string | null }>;
}

// ---------------------------------------------------------------------------------------------

type Resolved = { ok: true; value: ResolvedHost[]; warnings: ReportWarning[] } | { ok: false; problems: InputProblem[]; source: string };

function resolve(input: HostsInput, options: RunOptions): Resolved {
  const source = typeof input === "string" ? (input === "-" ? "standard input" : input) : "hosts";
  const document = typeof input === "string" ? readHostsFile(input) : fromObject(input);
  if (!document.ok) return { ok: false, problems: document.problems, source };
  const resolved = resolveHosts(document.value, {
    ...(options.lab ? { lab: options.lab } : {}),
    ...(options.limit ? { limit: options.limit } : {}),
    ...(options.env ? { env: options.env } : {}),
    allowInlineSecrets: typeof input !== "string",
  });
  if (!resolved.ok) return { ok: false, problems: resolved.problems, source };
  if (resolved.value.length === 0) return { ok: false, problems: [{ property: "hosts", reason: "required: there are no hosts to work on", fix: "list them: hosts: [{ name, connection: { host, user, hostKey } }]" }], source };
  return { ok: true, value: resolved.value, warnings: resolved.value.flatMap((host) => host.warnings.map((message) => ({ name: host.name, message }))) };
}

/** An object is checked like a file, with the same messages. */
function fromObject(input: Exclude<HostsInput, string>) {
  const { baseDir, ...content } = input;
  return checkHostsDocument(content, "hosts", baseDir ?? process.cwd());
}

function runOptions(options: RunOptions) {
  return {
    engine: options.engine ?? (require("./engine") as Engine),
    concurrency: options.concurrency ?? 32,
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  };
}

function base<C extends DocumentBase["command"]>(command: C, exitCode: number, warnings: ReportWarning[], errors: ReportError[]): DocumentBase & { command: C } {
  return { schemaVersion: SCHEMA_VERSION, tool: { name: "rootless-docker-net", version: VERSION }, command, ok: exitCode === 0, exitCode, warnings, errors };
}

/** The document of a command that did not start: every input problem as an error at its place. @internal */
export function failed(command: DocumentBase["command"], problems: readonly InputProblem[], source: string, step = "validate input"): FailedDocument {
  const errors: ReportError[] = problems.map((problem) => ({
    type: step === "usage" ? "UsageError" : "InputError",
    name: problem.host ?? null,
    host: null,
    step,
    ...(step === "usage" ? {} : { file: source, property: problem.property }),
    message: step === "usage" ? problem.reason : `${problem.property}: ${problem.reason}`,
    fix: problem.fix ?? "",
    evidence: [],
  }));
  return base(command, 1, [], errors) as FailedDocument;
}

type Row = { name: string; warnings: string[]; error?: ErrorSummary; problems?: PlanReport["hosts"][number]["problems"]; host?: string };

function document<R extends PlanReport | ApplyReport | VerifyReport>(report: R, inputWarnings: ReportWarning[], rows: readonly Row[]) {
  const { command, exitCode, ...rest } = report;
  const warnings = [...inputWarnings];
  for (const row of rows) {
    for (const message of row.warnings) if (!warnings.some((known) => known.name === row.name && known.message === message)) warnings.push({ name: row.name, message });
  }
  const errors: ReportError[] = rows.flatMap((row): ReportError[] => [
    ...(row.error ? [{ ...row.error, name: row.name }] : []),
    ...(row.problems ?? [])
      .filter((problem) => problem.severity === "error")
      .map((problem) => ({ type: "CapabilityError", name: row.name, host: row.host ?? null, step: "check capabilities", message: problem.message, fix: problem.hint, evidence: [] })),
  ]);
  return { ...base(command, exitCode, warnings, errors), ...rest, command } as R extends PlanReport ? PlanDocument : R extends ApplyReport ? ApplyDocument : VerifyDocument;
}
