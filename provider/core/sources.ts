/**
 * Which file, line or environment decides each variable of the unit, as systemd builds a service's environment:
 * the unit file and its drop-ins as the next daemon-reload loads them (src/shared/dropin.c, conf-files.c), then
 * the exec environment (src/core/exec-invoke.c: the manager's environment < Environment= < EnvironmentFile=, then
 * UnsetEnvironment=). Pure: facts in, decisions out.
 */
import { baseName, expandSpecifiers, parseEnvironmentValue, parseUnitFile, splitValueWords, type SpecifierValues } from "./dropin";
import type { HostFacts, UnitFileOnDisk } from "./types";

/**
 * The drop-in directory names systemd searches for a unit (dropin.c, unit_file_find_dirs): the unit's own, its
 * template's, one per dash prefix ("foo-bar-baz.service" → "foo-bar-.service.d", "foo-.service.d"), and the
 * type-level one ("service.d", systemd ≥ 246), most specific first.
 */
export function dropInDirNames(unit: string): string[] {
  const dot = unit.lastIndexOf(".");
  if (dot <= 0) return [`${unit}.d`];
  const suffix = unit.slice(dot);
  const names: string[] = [];
  const visit = (name: string) => {
    names.push(`${name}.d`);
    const end = name.lastIndexOf(".");
    const at = name.indexOf("@");
    const instance = at > 0 && at < end - 1 ? name.slice(at + 1, end) : null;
    if (instance !== null) visit(`${name.slice(0, at + 1)}${suffix}`);
    let prefix = name.slice(0, at > 0 ? at : end);
    // A trailing dash is chopped once: "foo-.service" goes on with "foo.service"'s prefixes.
    let chopped = false;
    for (;;) {
      const dash = prefix.lastIndexOf("-");
      if (dash <= 0) return;
      if (dash + 1 < prefix.length || chopped) {
        prefix = prefix.slice(0, dash + 1);
        break;
      }
      prefix = prefix.slice(0, dash);
      chopped = true;
    }
    visit(`${prefix}${instance === null ? "" : `@${instance}`}${suffix}`);
  };
  visit(unit);
  names.push(`${suffix.slice(1)}.d`);
  return [...new Set(names)];
}

export interface UnitLoad {
  /** The unit file: the first of its name in the search path; null when there is none. */
  fragment: UnitFileOnDisk | null;
  /** The drop-ins systemd applies, in its order (by file name). */
  dropIns: UnitFileOnDisk[];
  /** Files that a same-named file in a higher-priority directory masks (a symlink to /dev/null masks too). */
  masked: { file: UnitFileOnDisk; by: UnitFileOnDisk }[];
}

/** conf_files_list_strv over the search-path-ordered files: one file per name, the highest-priority one, sorted by name. */
export function unitLoad(files: readonly UnitFileOnDisk[]): UnitLoad {
  const fragment = files.find((file) => file.kind === "fragment") ?? null;
  const winners = new Map<string, UnitFileOnDisk>();
  const masked: UnitLoad["masked"] = [];
  for (const file of files.filter((entry) => entry.kind === "dropin")) {
    const winner = winners.get(baseName(file.path));
    if (winner === undefined) winners.set(baseName(file.path), file);
    else masked.push({ file, by: winner });
  }
  const dropIns = [...winners.values()].filter((file) => file.content !== null).sort((a, b) => (baseName(a.path) < baseName(b.path) ? -1 : baseName(a.path) > baseName(b.path) ? 1 : 0));
  return { fragment: fragment?.content === null ? null : fragment, dropIns, masked };
}

/** Who decides a variable: a line of a unit file or drop-in, an EnvironmentFile=, an UnsetEnvironment=, or the manager. */
export interface Decision {
  /** undefined = unset (by UnsetEnvironment=, or nothing sets it). */
  value: string | undefined;
  kind: "unit-file" | "environment-file" | "unset" | "manager";
  /** The file (for the manager: the environment.d files that set it, if any). */
  path: string | null;
  line: number | null;
}

/** A word the parser cannot take as systemd does: the plan refuses the file, naming file and line. */
export interface SourceProblem {
  path: string;
  line: number;
  message: string;
}

export interface EnvironmentModel {
  /** The variables the unit's processes get at their next start, and who decides each. */
  decisions: Map<string, Decision>;
  /** EnvironmentFile= paths that are required (no `-`) and missing: the unit fails to start. */
  missingEnvironmentFiles: { path: string; unitFile: string; line: number }[];
  problems: SourceProblem[];
}

export function specifierValues(facts: HostFacts): SpecifierValues {
  return { home: facts.home, user: facts.user, uid: facts.uid, xdgRuntimeDir: facts.xdgRuntimeDir };
}

/** `*`, `?` and `[…]` of an EnvironmentFile= glob, as a regular expression over whole paths. */
function globPattern(glob: string): RegExp {
  let source = "";
  for (let index = 0; index < glob.length; index++) {
    const char = glob[index];
    if (char === "*") source += "[^/]*";
    else if (char === "?") source += "[^/]";
    else if (char === "[" && glob.indexOf("]", index + 2) > 0) {
      const end = glob.indexOf("]", index + 2);
      source += `[${glob.slice(index + 1, end).replace(/^!/, "^").replace(/\\/g, "\\\\")}]`;
      index = end;
    } else source += char.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${source}$`);
}

/**
 * An EnvironmentFile= as systemd reads it (src/basic/env-file.c, parse_env_file_internal): KEY=VALUE lines, `#`/`;`
 * comments, single quotes literal, double quotes with `\"`, `\\`, `` \` ``, `\$` unescaped, unquoted backslash
 * escapes, backslash-newline eaten, trailing blanks of an unquoted value cut. Keys that are not variable names
 * are dropped afterwards, as strv_env_clean does.
 */
export function parseEnvironmentFile(content: string): { name: string; value: string; line: number }[] {
  const out: { name: string; value: string; line: number }[] = [];
  type State = "preKey" | "key" | "preValue" | "value" | "valueEscape" | "single" | "double" | "doubleEscape" | "comment" | "commentEscape";
  let state: State = "preKey";
  let key = "";
  let value = "";
  let line = 1;
  let keyWhitespace = -1;
  let valueWhitespace = -1;
  const push = () => {
    const name = keyWhitespace >= 0 ? key.slice(0, keyWhitespace) : key;
    if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) out.push({ name, value, line });
    key = "";
    value = "";
  };
  for (const char of content) {
    const newline = char === "\n" || char === "\r";
    const blank = char === " " || char === "\t" || newline;
    switch (state) {
      case "preKey":
        if (char === "#" || char === ";") state = "comment";
        else if (!blank) {
          state = "key";
          keyWhitespace = -1;
          key = char;
        }
        break;
      case "key":
        if (newline) {
          state = "preKey";
          line++;
          key = "";
        } else if (char === "=") {
          state = "preValue";
          valueWhitespace = -1;
        } else {
          if (!blank) keyWhitespace = -1;
          else if (keyWhitespace < 0) keyWhitespace = key.length;
          key += char;
        }
        break;
      case "preValue":
        if (newline) {
          push();
          state = "preKey";
          line++;
        } else if (char === "'") state = "single";
        else if (char === '"') state = "double";
        else if (char === "\\") state = "valueEscape";
        else if (!blank) {
          state = "value";
          value += char;
        }
        break;
      case "value":
        if (newline) {
          if (valueWhitespace >= 0) value = value.slice(0, valueWhitespace);
          push();
          state = "preKey";
          line++;
        } else if (char === "\\") {
          state = "valueEscape";
          valueWhitespace = -1;
        } else {
          if (!blank) valueWhitespace = -1;
          else if (valueWhitespace < 0) valueWhitespace = value.length;
          value += char;
        }
        break;
      case "valueEscape":
        state = "value";
        if (!newline) value += char;
        break;
      case "single":
        if (char === "'") state = "preValue";
        else value += char;
        break;
      case "double":
        if (char === '"') state = "preValue";
        else if (char === "\\") state = "doubleEscape";
        else value += char;
        break;
      case "doubleEscape":
        state = "double";
        if ('"\\`$'.includes(char)) value += char;
        else if (char !== "\n") value += `\\${char}`;
        break;
      case "comment":
        if (char === "\\") state = "commentEscape";
        else if (newline) {
          state = "preKey";
          line++;
        }
        break;
      case "commentEscape":
        if (newline) {
          state = "preKey";
          line++;
        } else state = "comment";
        break;
    }
  }
  if (state === "value" && valueWhitespace >= 0) value = value.slice(0, valueWhitespace);
  if (["preValue", "value", "valueEscape", "single", "double", "doubleEscape"].includes(state)) push();
  return out;
}

/**
 * The environment the unit's processes get at their next start when `files` are what systemd has loaded, and
 * who decides each variable. `files` are search-path ordered (HostFacts.unitFiles, perhaps with our drop-in
 * replaced by what an apply writes).
 */
export function environmentModel(facts: HostFacts, files: readonly UnitFileOnDisk[]): EnvironmentModel {
  const context = specifierValues(facts);
  const load = unitLoad(files);
  const problems: SourceProblem[] = [];
  const environment = new Map<string, Decision>();
  const environmentFiles: { glob: string; optional: boolean; path: string; line: number }[] = [];
  const unsets: { entry: string; path: string; line: number }[] = [];
  for (const file of [...(load.fragment ? [load.fragment] : []), ...load.dropIns]) {
    for (const line of parseUnitFile(file.content ?? "")) {
      if (line.kind !== "setting" || line.section !== "Service") continue;
      const at = { path: file.path, line: line.lineNumber };
      if (line.key === "Environment") {
        const parsed = parseEnvironmentValue(line.value, context);
        for (const problem of parsed.problems) problems.push({ ...at, message: problem });
        // A reset empties the Environment= list (the manager's environment stays): remember who did it.
        if (parsed.reset) for (const name of environment.keys()) environment.set(name, { value: undefined, kind: "unit-file", ...at });
        for (const [name, value] of parsed.assignments) environment.set(name, { value, kind: "unit-file", ...at });
      } else if (line.key === "EnvironmentFile") {
        if (line.value === "") {
          environmentFiles.length = 0;
          continue;
        }
        const optional = line.value.startsWith("-");
        const glob = expandSpecifiers(optional ? line.value.slice(1) : line.value, context);
        if (glob === null) problems.push({ ...at, message: `EnvironmentFile=${line.value} uses a specifier the plan cannot resolve` });
        else environmentFiles.push({ glob, optional, ...at });
      } else if (line.key === "UnsetEnvironment") {
        if (line.value === "") {
          unsets.length = 0;
          continue;
        }
        const words = splitValueWords(line.value);
        if (words.error !== null) problems.push({ ...at, message: `UnsetEnvironment=: ${words.error}` });
        for (const word of words.words) {
          const expanded = expandSpecifiers(word, context);
          if (expanded === null) problems.push({ ...at, message: `UnsetEnvironment= word "${word}" uses a specifier the plan cannot resolve` });
          else unsets.push({ entry: expanded, ...at });
        }
      }
    }
  }

  const sourcesOfManager = (name: string) => facts.environmentD.filter((file) => parseEnvironmentFile(file.content).some((entry) => entry.name === name));
  const decisions = new Map<string, Decision>();
  for (const [name, value] of Object.entries(facts.managerEnvironment)) {
    const from = sourcesOfManager(name);
    decisions.set(name, { value, kind: "manager", path: from.length > 0 ? from.map((file) => file.path).join(", ") : null, line: null });
  }
  for (const [name, decision] of environment) if (decision.value !== undefined || !decisions.has(name)) decisions.set(name, decision);
  const missingEnvironmentFiles: EnvironmentModel["missingEnvironmentFiles"] = [];
  for (const entry of environmentFiles) {
    const pattern = globPattern(entry.glob);
    const matches = facts.environmentFiles.filter((file) => pattern.test(file.path));
    const present = matches.filter((file) => file.content !== null);
    if (present.length === 0 && !entry.optional && !/[*?[]/.test(entry.glob)) missingEnvironmentFiles.push({ path: entry.glob, unitFile: entry.path, line: entry.line });
    for (const file of present) {
      for (const assignment of parseEnvironmentFile(file.content ?? "")) {
        decisions.set(assignment.name, { value: assignment.value, kind: "environment-file", path: file.path, line: assignment.line });
      }
    }
  }
  for (const unset of unsets) {
    const equals = unset.entry.indexOf("=");
    const name = equals < 0 ? unset.entry : unset.entry.slice(0, equals);
    const current = decisions.get(name);
    if (current === undefined || current.value === undefined) continue;
    if (equals < 0 || current.value === unset.entry.slice(equals + 1)) decisions.set(name, { value: undefined, kind: "unset", path: unset.path, line: unset.line });
  }
  return { decisions, missingEnvironmentFiles, problems };
}

/** Where a decision comes from, for a cause or a message: "PATH line N", "EnvironmentFile= PATH", … */
export function describeSource(decision: Decision): string {
  const where = decision.line === null ? `${decision.path}` : `${decision.path}:${decision.line}`;
  switch (decision.kind) {
    case "unit-file":
      return where;
    case "environment-file":
      return `EnvironmentFile= ${where}`;
    case "unset":
      return `UnsetEnvironment= in ${where}`;
    case "manager":
      return `the user manager's environment (systemctl --user show-environment${decision.path === null ? "" : `; set in ${decision.path}`})`;
  }
}
