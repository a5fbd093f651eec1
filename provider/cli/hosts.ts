/**
 * The CLI's hosts file: `defaults:` plus `hosts:`, each host's settings validated with the same zod
 * schema as the Pulumi resource (`validateNetworkArgs`), so a file that passes here is a valid resource.
 * Keys are referenced by path (`privateKeyPath`), by environment variable (`privateKeyEnv`) or by agent,
 * never inline: a hosts file lives in repositories and CI logs, where an inline key or password would leak.
 * Problems are reported where they are written: a typo in `defaults:` once as `defaults.…`, not once per host.
 */
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { validateNetworkArgs } from "../core/schema";
import { closest } from "../core/suggest";
import type { InputProblem, NetworkSpec, Validation } from "../core/types";
import { isMapping, mergeSettings } from "../core/waves";

type Settings = Record<string, unknown>;

/** One host as written in the file (or derived from the lab): a name and `RootlessDockerNetwork` inputs. */
export interface HostEntry extends Settings {
  /** The host's name: unique in the file, used in reports, `--limit` and `--host`. */
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

type Environment = Readonly<Record<string, string | undefined>>;

export interface ResolveOptions {
  /** The lab's hosts: the document's `hosts:` entries are then overrides for lab hosts of the same name. */
  lab?: readonly HostEntry[];
  /** Only these hosts (by name); every name must exist. */
  limit?: readonly string[];
  /** Accept `privateKey`, `password` and `privateKeyPassword` as values (the Node API, where they are not in a file). */
  allowInlineSecrets?: boolean;
  /** Variables for `${NAME}` in paths and for `privateKeyEnv` (default `process.env`). */
  env?: Environment;
}

const TOP_LEVEL_KEYS = ["defaults", "hosts"];
/** Connection keys of the hosts file that the resource does not have: they are turned into `privateKey`. */
const KEY_SOURCES = ["privateKeyPath", "privateKeyEnv"];
/** Connection paths that may name `${VARIABLE}`s. */
const PATH_KEYS = ["privateKeyPath", "knownHostsPath", "agentSocketPath"];
/** Secrets a hosts file must not carry inline, with what to use instead. */
const INLINE_SECRETS: Record<string, string> = {
  privateKey: "use privateKeyPath (a file readable only by you), privateKeyEnv (a variable holding the key) or an SSH agent (SSH_AUTH_SOCK, or agentSocketPath)",
  password: "use privateKeyPath, privateKeyEnv or an SSH agent; passwords do not belong in a hosts file",
  privateKeyPassword: "load the encrypted key into an SSH agent (ssh-add) and use SSH_AUTH_SOCK or agentSocketPath",
};

/** Reads a hosts file; `-` reads standard input (relative paths then resolve against the working directory). */
export function readHostsFile(path: string): Validation<HostsDocument> {
  const source = path === "-" ? "standard input" : path;
  let text: string;
  try {
    text = readFileSync(path === "-" ? 0 : path, "utf8");
  } catch (error) {
    return fail(source, `cannot be read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  return parseHostsText(text, source, path === "-" ? process.cwd() : dirname(resolve(path)));
}

export function parseHostsText(text: string, source: string, baseDir: string): Validation<HostsDocument> {
  let raw: unknown;
  try {
    // logLevel "error": the parser's warnings (unknown tags) would otherwise print the source line to stderr.
    raw = parseYaml(text, { prettyErrors: false, logLevel: "error" });
  } catch (error) {
    return fail(source, yamlProblem(text, error as { message?: string; pos?: [number, number] }));
  }
  return checkHostsDocument(raw, source, baseDir);
}

/** The structure of a hosts file (top-level keys, a list of named hosts); the inputs are checked by resolveHosts. */
export function checkHostsDocument(raw: unknown, source: string, baseDir: string): Validation<HostsDocument> {
  if (raw === null || raw === undefined) return fail(source, "is empty: a hosts file needs `hosts:` (and optionally `defaults:`)");
  if (!isMapping(raw)) return fail(source, "must be a YAML mapping with `hosts:` (and optionally `defaults:`)");
  const problems: InputProblem[] = Object.keys(raw)
    .filter((key) => !TOP_LEVEL_KEYS.includes(key))
    .map((key) => {
      const suggestion = closest(key, TOP_LEVEL_KEYS);
      return { property: key, reason: "is not a known key", fix: suggestion ? `did you mean "${suggestion}"?` : `a hosts file has only ${TOP_LEVEL_KEYS.join(" and ")}` };
    });
  const defaults = raw.defaults ?? {};
  if (!isMapping(defaults)) problems.push({ property: "defaults", reason: "must be a mapping of RootlessDockerNetwork inputs" });
  // Optional: with --lab a file may hold only defaults; without hosts from anywhere, the API says so.
  const hosts = raw.hosts ?? [];
  if (!Array.isArray(hosts)) problems.push({ property: "hosts", reason: "must be a list of {name, connection, …overrides}" });
  else hosts.forEach((host, index) => problems.push(...entryProblems(host, `hosts[${index}]`)));
  if (problems.length > 0) return { ok: false, problems };
  return { ok: true, value: { defaults: defaults as Settings, hosts: hosts as HostEntry[], baseDir }, warnings: [] };
}

/** The parser's own words with line and column, never the source text (it may hold an inline, refused secret). */
function yamlProblem(text: string, error: { message?: string; pos?: [number, number] }): string {
  // Messages such as "Unresolved alias (…): NAME" end with words of the file: keep only what the parser says.
  const words = (error.message ?? "syntax error").split(": ")[0];
  if (!error.pos) return `is not valid YAML: ${words}`;
  const before = text.slice(0, error.pos[0]).split("\n");
  return `is not valid YAML: ${words} (line ${before.length}, column ${before[before.length - 1].length + 1})`;
}

/**
 * Each host's settings: `defaults`, then the lab's entry (when given), then the file's entry, merged
 * mapping by mapping; then the key is read and the result validated. A problem is reported where its value is
 * written (`defaults.…` once for all hosts, `hosts[N].…` for the host's own), a missing value at the host.
 */
export function resolveHosts(document: HostsDocument, options: ResolveOptions = {}): Validation<ResolvedHost[]> {
  const { lab, limit } = options;
  const problems: InputProblem[] = [];
  const fileEntries = new Map(document.hosts.map((entry, index) => [entry.name, { entry, index }]));
  if (lab) {
    const labNames = lab.map((entry) => entry.name);
    document.hosts.forEach((entry, index) => {
      if (!labNames.includes(entry.name)) problems.push({ property: `hosts[${index}].name`, reason: `"${entry.name}" is not a lab host`, fix: `lab hosts: ${labNames.join(", ")}` });
    });
  }
  const entries = lab
    ? lab.map((labEntry, index) => ({ name: labEntry.name, path: `lab[${index}]`, layers: [labEntry, fileEntries.get(labEntry.name)?.entry ?? {}], own: fileEntries.get(labEntry.name) }))
    : document.hosts.map((entry, index) => ({ name: entry.name, path: `hosts[${index}]`, layers: [entry], own: { entry, index } }));
  const names = entries.map((entry) => entry.name);
  for (const name of limit ?? []) {
    if (!names.includes(name)) {
      const suggestion = closest(name, names);
      problems.push({ property: "--limit", reason: `"${name}" is not a host of ${lab ? "the lab" : "the hosts file"}`, fix: suggestion ? `did you mean "${suggestion}"?` : `hosts: ${names.join(", ")}` });
    }
  }
  const seen = new Map<string, string>();
  for (const { path, name } of entries) {
    if (seen.has(name)) problems.push({ property: `${path}.name`, reason: `"${name}" is already the name of ${seen.get(name)}`, fix: "names must be unique" });
    seen.set(name, path);
  }

  const resolved: ResolvedHost[] = [];
  for (const { name, path, layers, own } of entries) {
    if (limit && !limit.includes(name)) continue;
    const { name: _name, ...inputs } = layers.reduce<Settings>((merged, layer) => merge(merged, layer), document.defaults);
    const local: InputProblem[] = [];
    const withKeys = readKeys(inputs, document.baseDir, options, local);
    const validation = validateNetworkArgs(withKeys, { sshAuthSock: (options.env ?? process.env).SSH_AUTH_SOCK });
    if (!validation.ok) local.push(...withoutImpliedProblems(validation.problems, local));
    // Where each value was written: the host's own entry, the lab's, or the defaults (reported once).
    const origins: [Settings, string][] = [[own?.entry ?? {}, own ? `hosts[${own.index}]` : path], ...(lab ? [[layers[0], path] as [Settings, string]] : []), [document.defaults, "defaults"]];
    for (const problem of local) {
      const segments = parsePath(problem.property);
      const [, prefix] = origins.find(([layer]) => hasPath(layer, segments)) ?? [undefined, own ? `hosts[${own.index}]` : path];
      problems.push(prefix === "defaults" ? { ...problem, property: `defaults.${problem.property}` } : { ...problem, property: `${prefix}.${problem.property}`, host: name });
    }
    if (validation.ok && local.length === 0) resolved.push({ name, spec: validation.value, warnings: validation.warnings });
  }
  if (problems.length > 0) return { ok: false, problems: dedupe(problems) };
  return { ok: true, value: resolved, warnings: resolved.flatMap((host) => host.warnings.map((warning) => `${host.name}: ${warning}`)) };
}

/**
 * Problems that another one already explains: a misspelt key (`netwrokDriver`, "did you mean networkDriver?") why the
 * key it means is missing; a key that cannot be read (or is refused inline) why the connection has no credential.
 */
function withoutImpliedProblems(problems: readonly InputProblem[], keyProblems: readonly InputProblem[]): InputProblem[] {
  const meant = new Set(
    problems.flatMap((problem) => {
      const suggestion = /^did you mean "(.+)"\?$/.exec(problem.fix ?? "")?.[1];
      return suggestion ? [problem.property.replace(/[^.[\]]+$/, suggestion)] : [];
    }),
  );
  const keyless = new Set(keyProblems.map((problem) => problem.property.replace(/\.(privateKeyPath|privateKeyEnv|privateKey|password|privateKeyPassword)$/, "")));
  return problems.filter((problem) => !(problem.reason === "required" && meant.has(problem.property)) && !(problem.reason === "needs a credential" && keyless.has(problem.property)));
}

function entryProblems(entry: unknown, path: string): InputProblem[] {
  if (!isMapping(entry)) return [{ property: path, reason: "must be a mapping {name, connection, …overrides}" }];
  if (entry.name === undefined) return [{ property: `${path}.name`, reason: "required", fix: "give each host a name (used in reports and --limit)" }];
  if (typeof entry.name !== "string" || entry.name.trim() === "") return [{ property: `${path}.name`, reason: "must be a non-empty string" }];
  return [];
}

/**
 * Replaces `privateKeyPath` / `privateKeyEnv` by the key they name (also for the bastion in `proxy`), expands
 * `${VARIABLE}` and `~` in paths, and refuses inline secrets. Problems use paths relative to the entry.
 */
function readKeys(inputs: Settings, baseDir: string, options: ResolveOptions, problems: InputProblem[]): Settings {
  const env = options.env ?? process.env;
  const readConnection = (connection: unknown, connectionPath: string): unknown => {
    if (!isMapping(connection)) return connection;
    const { privateKeyPath, privateKeyEnv, proxy, ...rest } = connection;
    const result: Settings = { ...rest };
    if (!options.allowInlineSecrets) {
      for (const [key, instead] of Object.entries(INLINE_SECRETS)) {
        if (rest[key] === undefined) continue;
        problems.push({ property: `${connectionPath}.${key}`, reason: "inline secrets are refused in a hosts file", fix: instead });
        delete result[key];
      }
    }
    if (proxy !== undefined) result.proxy = readConnection(proxy, `${connectionPath}.proxy`);
    for (const key of PATH_KEYS.filter((name) => name !== "privateKeyPath" && typeof rest[name] === "string")) {
      const expanded = expandPath(rest[key] as string, baseDir, env, `${connectionPath}.${key}`, problems);
      if (expanded !== undefined) result[key] = expanded;
    }
    if (privateKeyPath !== undefined && privateKeyEnv !== undefined) {
      problems.push({ property: `${connectionPath}.privateKeyEnv`, reason: "conflicts with privateKeyPath", fix: "give the key one way: a file (privateKeyPath) or a variable (privateKeyEnv)" });
    } else if (privateKeyEnv !== undefined) {
      const value = typeof privateKeyEnv === "string" ? env[privateKeyEnv] : undefined;
      if (typeof privateKeyEnv !== "string" || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(privateKeyEnv)) {
        problems.push({ property: `${connectionPath}.privateKeyEnv`, reason: "must be the name of an environment variable", fix: "e.g. privateKeyEnv: DEPLOY_SSH_KEY" });
      } else if (!value) {
        problems.push({ property: `${connectionPath}.privateKeyEnv`, reason: `the environment variable ${privateKeyEnv} is not set`, fix: `export ${privateKeyEnv} with the text of the private key` });
      } else {
        result.privateKey = value;
      }
    } else if (privateKeyPath !== undefined) {
      if (typeof privateKeyPath !== "string") {
        problems.push({ property: `${connectionPath}.privateKeyPath`, reason: "must be a path to a private key file" });
      } else {
        const keyFile = expandPath(privateKeyPath, baseDir, env, `${connectionPath}.privateKeyPath`, problems);
        if (keyFile !== undefined) {
          try {
            result.privateKey = readFileSync(keyFile, "utf8");
          } catch (error) {
            problems.push({ property: `${connectionPath}.privateKeyPath`, reason: `cannot read ${keyFile}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}` });
          }
        }
      }
    }
    return result;
  };
  return inputs.connection === undefined ? inputs : { ...inputs, connection: readConnection(inputs.connection, "connection") };
}

/** `${NAME}` from the environment, a leading `~`, and relative to the hosts file; undefined (with a problem) when a variable is unset. */
function expandPath(path: string, baseDir: string, env: Environment, property: string, problems: InputProblem[]): string | undefined {
  const missing: string[] = [];
  const expanded = path.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name: string) => {
    const value = env[name];
    if (!value) missing.push(name);
    return value ?? "";
  });
  if (missing.length > 0) {
    problems.push({ property, reason: `names \${${missing[0]}}, which is not set in the environment`, fix: `export ${missing[0]}, or write the path itself` });
    return undefined;
  }
  if (expanded === "~" || expanded.startsWith("~/")) return join(homedir(), expanded.slice(1));
  return isAbsolute(expanded) ? expanded : resolve(baseDir, expanded);
}

/** `verify.targets[0].address` → ["verify", "targets", 0, "address"]. */
function parsePath(property: string): (string | number)[] {
  return [...property.matchAll(/([^.[\]]+)|\[(\d+)\]/g)].map((match) => (match[2] !== undefined ? Number(match[2]) : match[1]));
}

/** The layer writes this value itself (a prefix counts: `connection` given as a non-mapping holds everything under it). */
function hasPath(layer: unknown, segments: readonly (string | number)[]): boolean {
  let value = layer;
  for (const key of segments) {
    if (typeof value !== "object" || value === null) return false;
    // The hosts file's own key sources stand in for the privateKey the schema checks.
    const own = value as Record<string | number, unknown>;
    if (key === "privateKey" && KEY_SOURCES.some((source) => own[source] !== undefined)) return true;
    if (!(key in own)) return false;
    value = own[key];
    if (!isMapping(value) && !Array.isArray(value)) return true;
  }
  return true;
}

function dedupe(problems: InputProblem[]): InputProblem[] {
  const seen = new Set<string>();
  return problems.filter((problem) => {
    const key = `${problem.property}\0${problem.reason}\0${problem.fix ?? ""}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

const merge = (shared: Settings, own: Settings) => mergeSettings(shared, own) as Settings;

function fail(property: string, reason: string): Validation<never> {
  return { ok: false, problems: [{ property, reason }] };
}
