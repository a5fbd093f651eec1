/**
 * systemd unit-file syntax as systemd itself reads it (src/shared/conf-parser.c, config_parse_environ,
 * extract_first_word with EXTRACT_CUNESCAPE|EXTRACT_UNQUOTE), and the in-place edit of our drop-in.
 * Pure: strings in, strings out.
 */
import { MANAGED_VARIABLES } from "./schema";
import type { DropInFile } from "./types";

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
  let pending: { raw: string; joined: string; comments: string[] } | null = null;

  const finish = (raw: string, joined: string, comments: string[], eol: string) => {
    const line = classify(raw, joined, comments, eol, section);
    if (line.kind === "section") section = line.value;
    lines.push(line);
  };

  physicalLines(text).forEach(({ content, eol }, index) => {
    const body = index === 0 && content.startsWith("\uFEFF") ? content.slice(1) : content;
    const first = strip(body)[0];
    if (first === "#" || first === ";") {
      // systemd skips comment lines before looking at continuations, even in the middle of one.
      if (pending) {
        pending.raw += content + eol;
        pending.comments.push(content + eol);
      } else {
        lines.push({ raw: content + eol, kind: "comment", section, key: "", value: "", embeddedComments: [], eol, continued: false });
      }
      return;
    }
    const joined = (pending?.joined ?? "") + body;
    const raw = (pending?.raw ?? "") + content + eol;
    const comments = pending?.comments ?? [];
    if (endsWithContinuation(joined)) {
      // The backslash becomes a space.
      pending = { raw, joined: `${joined.slice(0, -1)} `, comments };
      return;
    }
    pending = null;
    finish(raw, joined, comments, eol);
  });
  if (pending !== null) {
    const { raw, joined, comments } = pending;
    finish(raw, joined, comments, "");
  }
  return lines;
}

function classify(raw: string, joined: string, embeddedComments: string[], eol: string, section: string | null): UnitFileLine {
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
}

const SIMPLE_ESCAPES: Record<string, string> = { a: "\x07", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t", v: "\v", "\\": "\\", '"': '"', "'": "'", s: " " };

/** cunescape_one: the character an escape after a backslash stands for, and how many characters it used; null = invalid. */
function unescapeOne(text: string, at: number): { char: string; length: number } | null {
  const kind = text[at];
  if (kind === undefined) return null;
  if (kind in SIMPLE_ESCAPES) return { char: SIMPLE_ESCAPES[kind], length: 1 };
  const numeric = (digits: number, radix: number, pattern: RegExp, skip: number) => {
    const part = text.slice(at + skip, at + skip + digits);
    if (part.length !== digits || !pattern.test(part)) return null;
    const code = parseInt(part, radix);
    if (code === 0 || code > 0x10ffff || (radix === 8 && code > 255)) return null;
    return { char: String.fromCodePoint(code), length: skip + digits };
  };
  if (kind === "x") return numeric(2, 16, /^[0-9a-fA-F]+$/, 1);
  if (kind === "u") return numeric(4, 16, /^[0-9a-fA-F]+$/, 1);
  if (kind === "U") return numeric(8, 16, /^[0-9a-fA-F]+$/, 1);
  if (kind >= "0" && kind <= "7") return numeric(3, 8, /^[0-7]+$/, 0);
  return null;
}

/** extract_first_word(EXTRACT_CUNESCAPE|EXTRACT_UNQUOTE) over the whole value; null = systemd rejects the line. */
function splitWords(value: string): Word[] | null {
  const words: Word[] = [];
  let at = 0;
  while (true) {
    while (at < value.length && WHITESPACE.includes(value[at])) at++;
    if (at >= value.length) return words;
    const start = at;
    let text = "";
    let quote: string | null = null;
    while (at < value.length && (quote !== null || !WHITESPACE.includes(value[at]))) {
      const char = value[at];
      if (char === "\\") {
        const escape = unescapeOne(value, at + 1);
        if (escape === null) return null;
        text += escape.char;
        at += 1 + escape.length;
      } else if (quote !== null && char === quote) {
        quote = null;
        at++;
      } else if (quote === null && (char === '"' || char === "'")) {
        quote = char;
        at++;
      } else {
        text += char;
        at++;
      }
    }
    if (quote !== null) return null;
    words.push({ text, start, end: at });
  }
}

/** Specifiers are expanded after unescaping; we can resolve only `%%` (others, like %h, stay as written). */
function expandPercent(text: string): string {
  return text.replace(/%%/g, "%");
}

export type EnvironmentValue = { reset: true } | { assignments: [string, string][] };

/** What one `Environment=` value does: an empty value resets the list; invalid words (and a line systemd rejects) assign nothing. */
export function parseEnvironmentValue(value: string): EnvironmentValue {
  if (value === "") return { reset: true };
  return { assignments: (splitWords(value) ?? []).flatMap((word) => assignmentOf(word) ?? []).map((assignment) => [assignment.name, assignment.value]) };
}

function assignmentOf(word: Word): { name: string; value: string } | null {
  const text = expandPercent(word.text);
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
      if ("reset" in parsed) for (const name of Object.keys(env)) delete env[name];
      else for (const [name, value] of parsed.assignments) env[name] = value;
    }
  }
  return env;
}

/** Our variables (MANAGED_VARIABLES) as one drop-in sets them. */
export function managedAssignments(content: string | null): Record<string, string> {
  return Object.fromEntries(Object.entries(effectiveFromDropIns([content])).filter(([name]) => MANAGED_VARIABLES.includes(name)));
}

export const baseName = (path: string): string => path.slice(path.lastIndexOf("/") + 1);

/**
 * The drop-in that decides `name` over ours: systemd applies drop-ins sorted by file name, so the last of those
 * sorting after ours (or sharing its name, which masks ours) that sets or resets `name`. `value` undefined = reset.
 */
export function overridingDropIn(ourPath: string, others: readonly DropInFile[], name: string): { path: string; value: string | undefined } | null {
  let overrider: { path: string; value: string | undefined } | null = null;
  for (const file of others) {
    if (file.path === ourPath || baseName(file.path) < baseName(ourPath)) continue;
    for (const line of parseUnitFile(file.content).filter(isServiceEnvironment)) {
      const parsed = parseEnvironmentValue(line.value);
      if ("reset" in parsed) overrider = { path: file.path, value: undefined };
      else for (const [assigned, value] of parsed.assignments) if (assigned === name) overrider = { path: file.path, value };
    }
  }
  return overrider;
}

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
    const words = splitWords(line.value);
    if (words === null) return;
    wordsOf.set(index, words);
    words.forEach((word, position) => {
      const assignment = assignmentOf(word);
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
