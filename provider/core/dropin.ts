/**
 * systemd unit-file syntax as systemd itself reads it (src/shared/conf-parser.c, config_parse_environ,
 * extract_first_word with EXTRACT_CUNESCAPE|EXTRACT_UNQUOTE), and the in-place edit of our drop-in.
 * Pure: strings in, strings out.
 */
import { MANAGED_VARIABLES } from "./schema";

/** First line of a drop-in we create. */
export const DROP_IN_HEADER =
  "# Managed by pulumi-rootless-docker: its DOCKERD_ROOTLESS_ROOTLESSKIT_* assignments (and the ExecStartPost= naming its helper) are rewritten on each apply.";

/** Our `ExecStartPost=` line is the one whose command contains this. */
export const COMPAT_HELPER_MARKER = "pulumi-rootless-docker/pasta-ipv6-compat.sh";

export interface UnitFileLine {
  /** The exact text: every physical line of it (continuations and the comment lines systemd skips inside them) with line endings. */
  raw: string;
  kind: "blank" | "comment" | "section" | "setting" | "invalid";
  /** The section the line is in (for a header, the one it opens); null before the first header. */
  section: string | null;
  /** For settings: the key and the value as systemd sees them (continuations joined, whitespace stripped). */
  key: string;
  value: string;
  /** Comment lines inside a continuation, which systemd skips; kept when the line is rewritten. */
  embeddedComments: string[];
  /** Line ending of the last physical line ("" at the end of a file without one). */
  eol: string;
  /** Spread over several physical lines with trailing backslashes. */
  continued: boolean;
  /** 1-based number of its first physical line (what systemd names in its log). */
  lineNumber: number;
}

/** systemd's WHITESPACE. */
const WHITESPACE = " \t\n\r";
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function strip(text: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && WHITESPACE.includes(text[start])) start++;
  while (end > start && WHITESPACE.includes(text[end - 1])) end--;
  return text.slice(start, end);
}

function physicalLines(text: string): { content: string; eol: string }[] {
  const lines: { content: string; eol: string }[] = [];
  const pattern = /([^\r\n]*)(\r\n|\n|\r|$)/g;
  for (let match = pattern.exec(text); match !== null && match.index < text.length; match = pattern.exec(text)) {
    lines.push({ content: match[1], eol: match[2] });
  }
  return lines;
}

/** conf-parser.c: a line continues when it ends in a backslash that is not itself escaped. */
function endsWithContinuation(text: string): boolean {
  let escaped = false;
  for (const char of text) escaped = escaped ? false : char === "\\";
  return escaped;
}

export function parseUnitFile(text: string): UnitFileLine[] {
  const lines: UnitFileLine[] = [];
  let section: string | null = null;
  let pending: { raw: string; joined: string; comments: string[]; first: number } | null = null;

  const finish = (raw: string, joined: string, comments: string[], eol: string, first: number) => {
    const line = { ...classify(raw, joined, comments, eol, section), lineNumber: first };
    if (line.kind === "section") section = line.value;
    lines.push(line);
  };

  physicalLines(text).forEach(({ content, eol }, index) => {
    const body = index === 0 && content.startsWith("\uFEFF") ? content.slice(1) : content;
    const lead = strip(body)[0];
    if (lead === "#" || lead === ";") {
      // systemd skips comment lines before looking at continuations, even in the middle of one.
      if (pending) {
        pending.raw += content + eol;
        pending.comments.push(content + eol);
      } else {
        lines.push({ raw: content + eol, kind: "comment", section, key: "", value: "", embeddedComments: [], eol, continued: false, lineNumber: index + 1 });
      }
      return;
    }
    const joined = (pending?.joined ?? "") + body;
    const raw = (pending?.raw ?? "") + content + eol;
    const comments = pending?.comments ?? [];
    const first = pending?.first ?? index + 1;
    if (endsWithContinuation(joined)) {
      // The backslash becomes a space.
      pending = { raw, joined: `${joined.slice(0, -1)} `, comments, first };
      return;
    }
    pending = null;
    finish(raw, joined, comments, eol, first);
  });
  if (pending !== null) {
    const { raw, joined, comments, first } = pending;
    finish(raw, joined, comments, "", first);
  }
  return lines;
}

function classify(raw: string, joined: string, embeddedComments: string[], eol: string, section: string | null): Omit<UnitFileLine, "lineNumber"> {
  const text = strip(joined);
  const base = { raw, section, key: "", value: "", embeddedComments, eol, continued: embeddedComments.length > 0 || physicalLines(raw).length > 1 };
  if (text === "") return { ...base, kind: "blank" };
  if (text[0] === "#" || text[0] === ";") return { ...base, kind: "comment" };
  if (text[0] === "[") {
    return text.endsWith("]") ? { ...base, kind: "section", section: text.slice(1, -1), value: text.slice(1, -1) } : { ...base, kind: "invalid" };
  }
  const equals = text.indexOf("=");
  if (equals < 0) return { ...base, kind: "invalid" };
  return { ...base, kind: "setting", key: strip(text.slice(0, equals)), value: strip(text.slice(equals + 1)) };
}

// ---------------------------------------------------------------------------------------------
// Environment= values

interface Word {
  text: string;
  start: number;
  end: number;
  /** Escapes made bytes that are not UTF-8: systemd refuses such an assignment (env_assignment_is_valid). */
  invalidUtf8: boolean;
}

const SIMPLE_ESCAPES: Record<string, string> = { a: "\x07", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t", v: "\v", "\\": "\\", '"': '"', "'": "'", s: " " };

/**
 * cunescape_one: the bytes an escape after a backslash stands for (`\xNN` and `\ooo` one byte each, `\u`/`\U` a
 * code point as UTF-8), and how many characters it used; null = invalid (NUL included).
 */
function unescapeOne(text: string, at: number): { bytes: number[]; length: number } | null {
  const kind = text[at];
  if (kind === undefined) return null;
  if (kind in SIMPLE_ESCAPES) return { bytes: [SIMPLE_ESCAPES[kind].charCodeAt(0)], length: 1 };
  const numeric = (digits: number, radix: number, pattern: RegExp, skip: number, codePoint: boolean) => {
    const part = text.slice(at + skip, at + skip + digits);
    if (part.length !== digits || !pattern.test(part)) return null;
    const code = parseInt(part, radix);
    if (code === 0 || code > 0x10ffff || (radix === 8 && code > 255)) return null;
    return { bytes: codePoint ? [...Buffer.from(String.fromCodePoint(code), "utf8")] : [code], length: skip + digits };
  };
  if (kind === "x") return numeric(2, 16, /^[0-9a-fA-F]+$/, 1, false);
  if (kind === "u") return numeric(4, 16, /^[0-9a-fA-F]+$/, 1, true);
  if (kind === "U") return numeric(8, 16, /^[0-9a-fA-F]+$/, 1, true);
  if (kind >= "0" && kind <= "7") return numeric(3, 8, /^[0-7]+$/, 0, false);
  return null;
}

/** UTF-8 bytes as text; invalid when they do not decode to themselves. */
function decodeBytes(bytes: number[]): { text: string; invalidUtf8: boolean } {
  const buffer = Buffer.from(bytes);
  const text = buffer.toString("utf8");
  return { text, invalidUtf8: !Buffer.from(text, "utf8").equals(buffer) };
}

/**
 * extract_first_word(EXTRACT_CUNESCAPE|EXTRACT_UNQUOTE) repeated over the whole value, as config_parse_environ
 * does: quotes may open anywhere in a word, backslash escapes work inside both kinds of quotes, and at the first
 * syntax error (an unknown escape, an unterminated quote, a trailing backslash) systemd stops: the words before
 * it are kept, the rest of the line is lost.
 */
function splitWords(value: string): { words: Word[]; error: string | null; errorAt: number } {
  const words: Word[] = [];
  let at = 0;
  while (true) {
    while (at < value.length && WHITESPACE.includes(value[at])) at++;
    if (at >= value.length) return { words, error: null, errorAt: -1 };
    const start = at;
    const bytes: number[] = [];
    let quote: string | null = null;
    while (at < value.length && (quote !== null || !WHITESPACE.includes(value[at]))) {
      const char = String.fromCodePoint(value.codePointAt(at)!);
      if (char === "\\") {
        const escape = unescapeOne(value, at + 1);
        if (escape === null) return { words, error: at + 1 >= value.length ? "a trailing backslash" : `an invalid escape "\\${value.slice(at + 1, at + 2)}"`, errorAt: start };
        bytes.push(...escape.bytes);
        at += 1 + escape.length;
      } else if (quote !== null && char === quote) {
        quote = null;
        at++;
      } else if (quote === null && (char === '"' || char === "'")) {
        quote = char;
        at++;
      } else {
        bytes.push(...Buffer.from(char, "utf8"));
        at += char.length;
      }
    }
    if (quote !== null) return { words, error: `an unterminated ${quote === '"' ? "double" : "single"} quote`, errorAt: start };
    words.push({ ...decodeBytes(bytes), start, end: at });
  }
}

/** The words of a value (UnsetEnvironment=, …) and the syntax error that ended them, if any. */
export function splitValueWords(value: string): { words: string[]; error: string | null } {
  const { words, error } = splitWords(value);
  return { words: words.map((word) => word.text), error };
}

/** Unit name, user and paths that specifiers (`%h`, `%u`, …) stand for; without them only `%%` is known. */
export interface SpecifierValues {
  home: string;
  user: string;
  uid: number;
  xdgRuntimeDir: string;
}

/**
 * The specifiers of a user unit the facts can resolve (systemd.unit(5), "Specifiers"); null for any other, so
 * that the caller refuses the word rather than guess.
 */
export function expandSpecifiers(text: string, values: SpecifierValues | null): string | null {
  const known: Record<string, string> = values === null ? { "%": "%" } : { "%": "%", h: values.home, u: values.user, U: String(values.uid), t: values.xdgRuntimeDir, T: "/tmp", V: "/var/tmp" };
  let result = "";
  for (let index = 0; index < text.length; index++) {
    if (text[index] !== "%") {
      result += text[index];
      continue;
    }
    const replacement = known[text[index + 1] ?? ""];
    if (replacement === undefined) return null;
    result += replacement;
    index++;
  }
  return result;
}

export interface EnvironmentValue {
  /** An empty value: systemd drops every earlier Environment= assignment. */
  reset: boolean;
  assignments: [string, string][];
  /** Why a word of ours was not taken (syntax error, specifier the plan cannot resolve). */
  problems: string[];
}

/**
 * What one `Environment=` value does (config_parse_environ): an empty value resets the list; each word is
 * unescaped, its specifiers expanded, and kept when it is a valid assignment. A word of our prefix whose
 * specifiers cannot be resolved here, and a syntax error, are problems: the plan refuses the file.
 */
export function parseEnvironmentValue(value: string, specifiers: SpecifierValues | null = null): EnvironmentValue {
  if (value === "") return { reset: true, assignments: [], problems: [] };
  const { words, error, errorAt } = splitWords(value);
  // A syntax error matters to us when what systemd ignores after it names one of our variables.
  const problems = error !== null && value.slice(errorAt).includes("DOCKERD_ROOTLESS_") ? [`Environment= has ${error}: systemd keeps the words before it and ignores the rest of the line`] : [];
  const assignments: [string, string][] = [];
  for (const word of words) {
    if (word.invalidUtf8) continue;
    const text = expandSpecifiers(word.text, specifiers);
    if (text === null) {
      if (word.text.startsWith("DOCKERD_ROOTLESS_")) problems.push(`Environment= word "${word.text}" has a specifier the plan cannot resolve`);
      continue;
    }
    const assignment = assignmentOf(text);
    if (assignment) assignments.push([assignment.name, assignment.value]);
  }
  return { reset: false, assignments, problems };
}

function assignmentOf(text: string): { name: string; value: string } | null {
  const equals = text.indexOf("=");
  if (equals <= 0 || !ENV_NAME.test(text.slice(0, equals))) return null;
  return { name: text.slice(0, equals), value: text.slice(equals + 1) };
}

/** One double-quoted word that systemd reads back as exactly `NAME=value`. */
export function quoteAssignment(name: string, value: string): string {
  const escaped = `${name}=${value}`.replace(/[\\"%\x00-\x1f\x7f]/g, (char) => {
    if (char === "%") return "%%";
    if (char === "\\" || char === '"') return `\\${char}`;
    const named = Object.entries(SIMPLE_ESCAPES).find(([, replacement]) => replacement === char && char !== " ");
    return named ? `\\${named[0]}` : `\\x${char.charCodeAt(0).toString(16).padStart(2, "0")}`;
  });
  return `"${escaped}"`;
}

const isServiceEnvironment = (line: UnitFileLine) => line.kind === "setting" && line.section === "Service" && line.key === "Environment";

/** The environment files build up when applied in order (only what their `[Service] Environment=` lines do). */
export function effectiveFromDropIns(contents: readonly (string | null)[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const content of contents) {
    for (const line of parseUnitFile(content ?? "").filter(isServiceEnvironment)) {
      const parsed = parseEnvironmentValue(line.value);
      if (parsed.reset) for (const name of Object.keys(env)) delete env[name];
      for (const [name, value] of parsed.assignments) env[name] = value;
    }
  }
  return env;
}

/** Our variables (MANAGED_VARIABLES) as one drop-in sets them. */
export function managedAssignments(content: string | null): Record<string, string> {
  return Object.fromEntries(Object.entries(effectiveFromDropIns([content])).filter(([name]) => MANAGED_VARIABLES.includes(name)));
}

export const baseName = (path: string): string => path.slice(path.lastIndexOf("/") + 1);

const isOurExecStartPost = (line: UnitFileLine) =>
  line.kind === "setting" && line.section === "Service" && line.key === "ExecStartPost" && line.value.includes(COMPAT_HELPER_MARKER);

/** The command of our `ExecStartPost=` line in a drop-in; null when there is none. */
export function ourExecStartPost(content: string | null): string | null {
  return parseUnitFile(content ?? "").find(isOurExecStartPost)?.value ?? null;
}

// ---------------------------------------------------------------------------------------------
// Editing

interface Occurrence {
  line: number;
  word: number;
  name: string;
  value: string;
}

/**
 * Our drop-in with exactly `desired` as its DOCKERD_ROOTLESS_ROOTLESSKIT_* assignments and our `ExecStartPost=`
 * line set to `execStartPost` (null = none). Everything else keeps its bytes; a line shared with other variables
 * keeps their words as written. New assignments go one per line, after the last reset, into the first [Service]
 * section. Returns null when nothing but our header and empty sections would remain (remove the file).
 */
export function editDropIn(original: string | null, desired: Record<string, string>, execStartPost: string | null): string | null {
  const foreign = Object.keys(desired).filter((name) => !MANAGED_VARIABLES.includes(name));
  if (foreign.length > 0) throw new RangeError(`editDropIn only manages ${MANAGED_VARIABLES.join(", ")}; not ${foreign.join(", ")}`);
  if (execStartPost !== null && !execStartPost.includes(COMPAT_HELPER_MARKER)) throw new RangeError(`our ExecStartPost= must name ${COMPAT_HELPER_MARKER}`);

  const isNew = original === null || original === "";
  const lines = parseUnitFile(original ?? "");
  const eol = lines.find((line) => line.eol !== "")?.eol ?? "\n";
  const replacement = new Map<number, string>();

  // Environment= lines: decide word by word. Only the last assignment after the last reset counts in systemd.
  const wordsOf = new Map<number, Word[]>();
  const occurrences: Occurrence[] = [];
  let lastReset = -1;
  lines.forEach((line, index) => {
    if (!isServiceEnvironment(line)) return;
    if (line.value === "") lastReset = index;
    const { words } = splitWords(line.value);
    wordsOf.set(index, words);
    words.forEach((word, position) => {
      const assignment = assignmentOf(expandSpecifiers(word.text, null) ?? "");
      if (assignment && MANAGED_VARIABLES.includes(assignment.name)) occurrences.push({ line: index, word: position, ...assignment });
    });
  });
  const live = new Map<string, Occurrence>();
  for (const occurrence of occurrences) if (occurrence.line > lastReset) live.set(occurrence.name, occurrence);

  const editsByLine = new Map<number, Map<number, string | null>>();
  for (const occurrence of occurrences) {
    const keep = live.get(occurrence.name) === occurrence && occurrence.name in desired;
    if (keep && occurrence.value === desired[occurrence.name]) continue;
    const edits = editsByLine.get(occurrence.line) ?? new Map<number, string | null>();
    edits.set(occurrence.word, keep ? quoteAssignment(occurrence.name, desired[occurrence.name]) : null);
    editsByLine.set(occurrence.line, edits);
  }
  for (const [index, edits] of editsByLine) replacement.set(index, rewriteEnvironmentLine(lines[index], wordsOf.get(index) ?? [], edits));

  // Our ExecStartPost= line: keep the first when it is already right, rewrite it otherwise, drop duplicates.
  const ours = lines.flatMap((line, index) => (isOurExecStartPost(line) ? [index] : []));
  const wantedExecLine = execStartPost === null ? null : `ExecStartPost=${execStartPost}`;
  ours.forEach((index, position) => {
    if (position === 0 && wantedExecLine !== null) {
      if (lines[index].value !== execStartPost) replacement.set(index, `${wantedExecLine}${eol}${lines[index].embeddedComments.join("")}`);
    } else {
      replacement.set(index, lines[index].embeddedComments.join(""));
    }
  });

  const added = Object.keys(desired)
    .filter((name) => !live.has(name))
    .map((name) => `Environment=${quoteAssignment(name, desired[name])}${eol}`);
  if (wantedExecLine !== null && ours.length === 0) added.push(`${wantedExecLine}${eol}`);

  const output = lines.map((line, index) => replacement.get(index) ?? line.raw);
  if (added.length > 0) insertIntoService(lines, output, added.join(""), lastReset, eol, isNew);

  const result = output.join("");
  return isEffectivelyEmpty(result) ? null : result;
}

/** The line with some of its words replaced (string) or removed (null); the other words keep their text. */
function rewriteEnvironmentLine(line: UnitFileLine, words: Word[], edits: Map<number, string | null>): string {
  const kept = words.flatMap((word, position) => {
    const edit = edits.get(position);
    if (edit === null) return [];
    // A continued line is rewritten as one line: its joined separators hold the indentation of the old lines.
    const separator = position === 0 || line.continued ? " " : line.value.slice(words[position - 1].end, word.start);
    return [{ text: edit ?? line.value.slice(word.start, word.end), separator }];
  });
  if (kept.length === 0) return line.embeddedComments.join("");
  const value = kept.map((word, position) => (position === 0 ? word.text : word.separator + word.text)).join("");
  if (line.continued) return `Environment=${value}${line.eol}${line.embeddedComments.join("")}`;
  // One physical line: the text around the value (key, spacing, trailing blanks) stays as it was.
  const content = line.raw.slice(0, line.raw.length - line.eol.length);
  const valueStart = content.indexOf(line.value, content.indexOf("=") + 1);
  return content.slice(0, valueStart) + value + content.slice(valueStart + line.value.length) + line.eol;
}

function insertIntoService(lines: UnitFileLine[], output: string[], text: string, lastReset: number, eol: string, isNew: boolean): void {
  const header = lines.findIndex((line) => line.kind === "section" && line.value === "Service");
  if (header < 0) {
    terminate(output, output.length - 1, eol);
    output.push(`${isNew ? `${DROP_IN_HEADER}${eol}` : ""}[Service]${eol}${text}`);
    return;
  }
  let after = header;
  for (let index = header + 1; index < lines.length && lines[index].kind !== "section"; index++) {
    if (lines[index].kind === "setting" || lines[index].kind === "invalid") after = index;
  }
  after = Math.max(after, lastReset);
  terminate(output, after, eol);
  output[after] += text;
}

/** A last line without a line ending gets one before anything is added after it. */
function terminate(output: string[], index: number, eol: string): void {
  if (index >= 0 && output[index] !== "" && !/[\r\n]$/.test(output[index])) output[index] += eol;
}

/** Nothing but blank lines, our header and section headers. */
function isEffectivelyEmpty(content: string): boolean {
  return parseUnitFile(content).every((line) => line.kind === "blank" || line.kind === "section" || (line.kind === "comment" && strip(line.raw) === DROP_IN_HEADER));
}
