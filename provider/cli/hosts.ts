/**
 * The CLI's hosts file: `defaults:` plus `hosts:`, each host's settings validated with the same zod
 * schema as the Pulumi resource (`validateNetworkArgs`), so a file that passes here is a valid resource.
 * Keys are referenced by path (`privateKeyPath`) or by agent, never inline: a hosts file lives in
 * repositories and CI logs, where an inline key or password would leak.
 */
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { validateNetworkArgs } from "../core/schema";
import type { InputProblem, NetworkSpec, Validation } from "../core/types";
import { isMapping, mergeSettings } from "../core/waves";

type Settings = Record<string, unknown>;

/** One host as written in the file (or derived from the lab): a name and `RootlessDockerNetwork` inputs. */
export interface HostEntry extends Settings {
  name: string;
}

export interface HostsDocument {
  defaults: Settings;
  hosts: HostEntry[];
  /** Directory relative `privateKeyPath`s are resolved against. */
  baseDir: string;
}

export interface ResolvedHost {
  name: string;
  spec: NetworkSpec;
  warnings: string[];
}

const TOP_LEVEL_KEYS = ["defaults", "hosts"];
/** Secrets a hosts file must not carry inline, with what to use instead. */
const INLINE_SECRETS: Record<string, string> = {
  privateKey: "use privateKeyPath (a file readable only by you) or an SSH agent (agentSocketPath, or SSH_AUTH_SOCK)",
  password: "use privateKeyPath or an SSH agent; passwords do not belong in a hosts file",
  privateKeyPassword: "load the encrypted key into an SSH agent (ssh-add) and use agentSocketPath, or SSH_AUTH_SOCK",
};

export function readHostsFile(path: string): Validation<HostsDocument> {
  let text: string;
  let raw: unknown;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    return fail(path, `cannot be read: ${(error as Error).message}`);
  }
  try {
    raw = parseYaml(text, { prettyErrors: false });
  } catch (error) {
    // The parser's message quotes the offending source lines, which may hold an (inline, refused) credential.
    const { code, pos } = error as { code?: string; pos?: [number, number] };
    const line = pos ? text.slice(0, pos[0]).split("\n").length : undefined;
    return fail(path, `cannot be read as YAML: ${code ?? "syntax error"}${line ? ` at line ${line}` : ""}`);
  }
  if (!isMapping(raw)) return fail(path, "must be a YAML mapping with `hosts:` (and optionally `defaults:`)");
  const problems: InputProblem[] = Object.keys(raw)
    .filter((key) => !TOP_LEVEL_KEYS.includes(key))
    .map((key) => ({ property: key, reason: `unknown key; a hosts file has only ${TOP_LEVEL_KEYS.join(" and ")}` }));
  const defaults = raw.defaults ?? {};
  if (!isMapping(defaults)) problems.push({ property: "defaults", reason: "must be a mapping of RootlessDockerNetwork inputs" });
  const hosts = raw.hosts ?? [];
  if (!Array.isArray(hosts)) problems.push({ property: "hosts", reason: "must be a list of {name, connection, …overrides}" });
  else hosts.forEach((host, index) => problems.push(...entryProblems(host, `hosts[${index}]`)));
  if (problems.length > 0) return { ok: false, problems };
  return { ok: true, value: { defaults: defaults as Settings, hosts: hosts as HostEntry[], baseDir: dirname(resolve(path)) }, warnings: [] };
}

/**
 * Each host's settings: `defaults`, then the lab's entry (when given), then the file's entry, merged
 * mapping by mapping; then the key file is read and the result validated. With `lab`, the file's
 * `hosts:` entries are overrides for lab hosts of the same name.
 */
export function resolveHosts(document: HostsDocument, lab?: readonly HostEntry[]): Validation<ResolvedHost[]> {
  const problems: InputProblem[] = [];
  const fileEntries = new Map(document.hosts.map((entry, index) => [entry.name, { entry, index }]));
  if (lab) {
    const labNames = new Set(lab.map((entry) => entry.name));
    document.hosts.forEach((entry, index) => {
      if (!labNames.has(entry.name)) problems.push({ property: `hosts[${index}].name`, reason: `"${entry.name}" is not a lab host (lab hosts: ${[...labNames].join(", ")})` });
    });
  }
  const entries = lab
    ? lab.map((labEntry, index) => ({ path: `lab[${index}]`, merged: merge(merge(document.defaults, labEntry), fileEntries.get(labEntry.name)?.entry ?? {}) }))
    : document.hosts.map((entry, index) => ({ path: `hosts[${index}]`, merged: merge(document.defaults, entry) }));

  const resolved: ResolvedHost[] = [];
  const seen = new Map<string, string>();
  for (const { path, merged } of entries) {
    const { name, ...inputs } = merged as HostEntry;
    if (seen.has(name)) problems.push({ property: `${path}.name`, reason: `"${name}" is already the name of ${seen.get(name)}; names must be unique` });
    seen.set(name, path);
    const withKeys = readKeyFiles(inputs, document.baseDir, `${path}.connection`, problems);
    const validation = validateNetworkArgs(withKeys);
    if (!validation.ok) {
      problems.push(...validation.problems.map((problem) => ({ property: `${path}.${problem.property}`, reason: `${name}: ${problem.reason}` })));
    } else {
      resolved.push({ name, spec: validation.value, warnings: validation.warnings });
    }
  }
  if (problems.length > 0) return { ok: false, problems };
  return { ok: true, value: resolved, warnings: resolved.flatMap((host) => host.warnings.map((warning) => `${host.name}: ${warning}`)) };
}

function entryProblems(entry: unknown, path: string): InputProblem[] {
  if (!isMapping(entry)) return [{ property: path, reason: "must be a mapping {name, connection, …overrides}" }];
  if (typeof entry.name !== "string" || entry.name.trim() === "") return [{ property: `${path}.name`, reason: "a non-empty name is required" }];
  return [];
}

/** Replaces `privateKeyPath` by the key it names (also for the bastion in `proxy`), refusing inline secrets. */
function readKeyFiles(inputs: Settings, baseDir: string, path: string, problems: InputProblem[]): Settings {
  const readConnection = (connection: unknown, connectionPath: string): unknown => {
    if (!isMapping(connection)) return connection;
    const { privateKeyPath, proxy, ...rest } = connection;
    for (const [key, instead] of Object.entries(INLINE_SECRETS)) {
      if (rest[key] !== undefined) problems.push({ property: `${connectionPath}.${key}`, reason: `inline secrets are refused in a hosts file: ${instead}` });
    }
    const result: Settings = { ...rest };
    if (proxy !== undefined) result.proxy = readConnection(proxy, `${connectionPath}.proxy`);
    if (privateKeyPath === undefined) return result;
    if (typeof privateKeyPath !== "string") {
      problems.push({ property: `${connectionPath}.privateKeyPath`, reason: "must be a path to a private key file" });
      return result;
    }
    const keyFile = expandPath(privateKeyPath, baseDir);
    try {
      result.privateKey = readFileSync(keyFile, "utf8");
    } catch (error) {
      problems.push({ property: `${connectionPath}.privateKeyPath`, reason: `cannot read ${keyFile}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}` });
    }
    return result;
  };
  return inputs.connection === undefined ? inputs : { ...inputs, connection: readConnection(inputs.connection, path) };
}

function expandPath(path: string, baseDir: string): string {
  if (path === "~" || path.startsWith("~/")) return join(homedir(), path.slice(1));
  return isAbsolute(path) ? path : resolve(baseDir, path);
}

const merge = (shared: Settings, own: Settings) => mergeSettings(shared, own) as Settings;


function fail(property: string, reason: string): Validation<never> {
  return { ok: false, problems: [{ property, reason }] };
}
