/**
 * What the host's own dockerd-rootless.sh (the script the unit's ExecStart runs, read by the facts) does with the
 * DOCKERD_ROOTLESS_ROOTLESSKIT_* variables: which it reads, the defaults it fills in, and the RootlessKit command line
 * it builds from them. Derived from the script's text, never from Docker's version number: moby changed these
 * between releases (DETACH_NETNS and its FLAGS rewrite from 29.5, the MTU chosen only on the auto-detect path up to
 * 28.5.1 — moby#47765 —, the pasta port driver default from 28.5.2, the fallback drivers of the NET auto-detection),
 * and distributions patch it. Pure.
 */
import { compareVersions } from "./versions";
import type { HostFacts } from "./types";

const PREFIX = "DOCKERD_ROOTLESS_ROOTLESSKIT_";

/** How the script chooses a value the environment leaves empty; null = the text did not tell. */
export interface ScriptModel {
  path: string | null;
  /** false = no script text (ExecStart is not a readable script): the model only passes the variables through. */
  known: boolean;
  /** The suffixes of the variables the script reads (`NET`, `DETACH_NETNS`, …). */
  reads: Set<string>;
  /** `: "${DOCKERD_ROOTLESS_ROOTLESSKIT_X:=VALUE}"`: what an unset or empty variable becomes. */
  defaults: Record<string, string>;
  /** The words of `exec $rootlesskit …` up to the child command: RootlessKit's flags, still with `$variables`. */
  template: string[];
  /** NET empty: the drivers tried in order, each with the binary whose presence selects it (null: taken unconditionally). */
  netOrder: { driver: string; binary: string | null }[] | null;
  /** MTU empty: 65520 only on the auto-detect path (up to Docker 28.5.1), or per driver. */
  mtuDefault: { autoDetected: { driver: string; mtu: string } | null; byDriver: { drivers: string[]; mtu: string } | null; otherwise: string } | null;
  /** PORT_DRIVER empty: per driver (`implicit` for pasta), else `otherwise`. */
  portDriverDefault: { byDriver: Record<string, string>; otherwise: string } | null;
  /** `$host_loopback`: `--disable-host-loopback` unless DISABLE_HOST_LOOPBACK is exactly `false`. */
  hostLoopback: { flag: string; offWhen: string } | null;
  /** DETACH_NETNS: the values that rewrite FLAGS to `PREFIX $FLAGS`, and those that make the script exit. */
  detachNetns: { rewrites: string[]; prefix: string; accepted: string[] } | null;
  /** The script's own line that turns on IPv6 forwarding in the namespace (Docker 29+), if any. */
  ipv6Forwarding: string | null;
}

/** The code lines of a script: comments and blank lines gone, continuation lines joined. */
function codeLines(text: string): string[] {
  const lines: string[] = [];
  let pending = "";
  for (const raw of text.split("\n")) {
    const line = raw.replace(/\r$/, "");
    if (pending === "" && /^\s*(#|$)/.test(line)) continue;
    if (line.endsWith("\\")) {
      pending += `${line.slice(0, -1)} `;
      continue;
    }
    lines.push((pending + line).trim());
    pending = "";
  }
  if (pending !== "") lines.push(pending.trim());
  return lines;
}

/** The lines of the if/case block that starts at `start`, up to its own `fi`/`esac`. */
function block(lines: string[], start: number): string[] {
  let depth = 0;
  for (let index = start; index < lines.length; index++) {
    const line = lines[index];
    if (/^(if|case)\b/.test(line)) depth++;
    if (/^(fi|esac)\b/.test(line) || /;\s*(fi|esac)$/.test(line)) depth--;
    if (depth === 0) return lines.slice(start, index + 1);
  }
  return lines.slice(start);
}

/** The first block whose head matches, at or after line `from`. */
function findBlock(lines: string[], head: RegExp, from = 0): string[] | null {
  const start = lines.findIndex((line, index) => index >= from && head.test(line));
  return start < 0 ? null : block(lines, start);
}

/** Where the NET auto-detection block (`if [ -z "$net" ]`) ends: the defaults that follow it come after that. */
function afterDetection(lines: string[]): number {
  const start = lines.findIndex((line) => /^if \[ -z "\$net" \]; then$/.test(line));
  return start < 0 ? 0 : start + block(lines, start).length;
}

/** `a | b)` arms of a case block, with the lines of each arm. */
function caseArms(lines: string[]): { patterns: string[]; body: string[] }[] {
  const arms: { patterns: string[]; body: string[] }[] = [];
  for (const line of lines.slice(1, -1)) {
    const arm = /^([^()]+)\)\s*(.*)$/.exec(line);
    if (arm && !line.startsWith("if ") && !line.includes("=")) {
      arms.push({ patterns: arm[1].split("|").map((pattern) => pattern.trim().replace(/^"(.*)"$/, "$1")), body: arm[2] ? [arm[2]] : [] });
    } else if (arms.length > 0) arms[arms.length - 1].body.push(line);
  }
  return arms;
}

export function scriptModel(path: string | null, text: string | null): ScriptModel {
  if (text === null) {
    return {
      path,
      known: false,
      reads: new Set(["NET", "MTU", "PORT_DRIVER", "FLAGS", "DISABLE_HOST_LOOPBACK", "DETACH_NETNS", "SLIRP4NETNS_SANDBOX", "SLIRP4NETNS_SECCOMP"]),
      defaults: {},
      template: [],
      netOrder: null,
      mtuDefault: null,
      portDriverDefault: null,
      hostLoopback: null,
      detachNetns: null,
      ipv6Forwarding: null,
    };
  }
  const lines = codeLines(text);
  const reads = new Set<string>();
  for (const match of lines.join("\n").matchAll(/\$\{?DOCKERD_ROOTLESS_ROOTLESSKIT_([A-Z0-9_]+)/g)) reads.add(match[1]);
  const defaults: Record<string, string> = {};
  for (const line of lines) {
    const match = /^:\s+"\$\{DOCKERD_ROOTLESS_ROOTLESSKIT_([A-Z0-9_]+):=([^}]*)\}"$/.exec(line);
    if (match) defaults[match[1]] = match[2];
  }
  // The parent's exec of RootlessKit: its flags end where "$0" (the script again, as the child command) begins.
  const exec = lines.find((line) => /^exec\s+"?\$\{?rootlesskit\}?"?\s/.test(line));
  const words = exec?.split(/\s+/).slice(2) ?? [];
  const child = words.findIndex((word) => /^"?\$0"?$/.test(word));
  const template = child < 0 ? words : words.slice(0, child);

  const ipv6Forwarding = lines.find((line) => /sysctl\s.*net\.ipv6\.conf\.all\.forwarding=1/.test(line)) ?? null;
  return { path, known: true, reads, defaults, template, netOrder: netOrder(lines), mtuDefault: mtuDefault(lines), portDriverDefault: portDriverDefault(lines, defaults), hostLoopback: hostLoopback(lines), detachNetns: detachNetns(lines), ipv6Forwarding };
}

function netOrder(lines: string[]): ScriptModel["netOrder"] {
  const detect = findBlock(lines, /^if \[ -z "\$net" \]; then$/);
  if (detect === null) return null;
  const order: { driver: string; binary: string | null }[] = [];
  let binary: string | null = null;
  for (const line of detect) {
    const probe = /command -v ([a-z0-9-]+)/.exec(line);
    if (probe) binary = probe[1];
    if (/^fi$/.test(line) && order.length > 0) binary = null;
    const chosen = /^net=([a-z0-9-]+)$/.exec(line);
    if (chosen) order.push({ driver: chosen[1], binary: binary === chosen[1] ? binary : null });
  }
  return order.length > 0 ? order : null;
}

function mtuDefault(lines: string[]): ScriptModel["mtuDefault"] {
  const detect = findBlock(lines, /^if \[ -z "\$net" \]; then$/) ?? [];
  const autoAt = detect.findIndex((line) => /^mtu=\d+$/.test(line));
  const autoDriver = autoAt < 0 ? undefined : [...detect.slice(0, autoAt)].reverse().map((line) => /^net=([a-z0-9-]+)$/.exec(line)?.[1]).find(Boolean);
  const autoDetected = autoAt >= 0 && autoDriver ? { driver: autoDriver, mtu: detect[autoAt].slice(4) } : null;
  // Up to 28.5.1 the auto-detection has an `if [ -z "$mtu" ]` of its own: the fallback is the one after it.
  const fallback = findBlock(lines, /^if \[ -z "\$mtu" \]; then$/, afterDetection(lines));
  if (fallback === null) return null;
  const values = fallback.map((line) => /^mtu=(\d+)$/.exec(line)?.[1]).filter((value): value is string => value !== undefined);
  const caseAt = fallback.findIndex((line) => /^case "\$net" in$/.test(line));
  if (caseAt >= 0) {
    const arms = caseArms(block(fallback, caseAt));
    const specific = arms.find((arm) => !arm.patterns.includes("*"));
    const other = arms.find((arm) => arm.patterns.includes("*"));
    const mtu = (arm: { body: string[] } | undefined) => arm?.body.map((line) => /^mtu=(\d+)/.exec(line)?.[1]).find(Boolean);
    if (specific && mtu(specific) && mtu(other)) return { autoDetected, byDriver: { drivers: specific.patterns, mtu: mtu(specific)! }, otherwise: mtu(other)! };
    return null;
  }
  const condition = fallback.find((line) => /^if \[ "\$net" = /.test(line));
  if (condition !== undefined && values.length === 2) {
    return { autoDetected, byDriver: { drivers: [...condition.matchAll(/"\$net" = ([a-z0-9-]+)/g)].map((match) => match[1]), mtu: values[0] }, otherwise: values[1] };
  }
  return values.length === 1 ? { autoDetected, byDriver: null, otherwise: values[0] } : null;
}

function portDriverDefault(lines: string[], defaults: Record<string, string>): ScriptModel["portDriverDefault"] {
  if ((defaults.PORT_DRIVER ?? "") !== "") return { byDriver: {}, otherwise: defaults.PORT_DRIVER };
  const fallback = findBlock(lines, /^if \[ -z "\$port_driver" \]; then$/);
  if (fallback === null) return null;
  const byDriver: Record<string, string> = {};
  let driver: string | null = null;
  let otherwise: string | null = null;
  for (const line of fallback) {
    const test = /^(?:el)?if \[ "\$net" = "?([a-z0-9-]+)"? \]; then$/.exec(line);
    if (test) driver = test[1];
    else if (line === "else") driver = null;
    const value = /^port_driver=([a-z0-9-]+)$/.exec(line)?.[1];
    if (value !== undefined && driver !== null) byDriver[driver] = value;
    else if (value !== undefined) otherwise = value;
  }
  return otherwise === null ? null : { byDriver, otherwise };
}

function hostLoopback(lines: string[]): ScriptModel["hostLoopback"] {
  const flag = lines.map((line) => /^host_loopback="?(--[a-z-]+)"?$/.exec(line)?.[1]).find(Boolean);
  const off = lines.map((line) => /^if \[ "\$DOCKERD_ROOTLESS_ROOTLESSKIT_DISABLE_HOST_LOOPBACK" = "?([a-z0-9]+)"? \]; then$/.exec(line)?.[1]).find(Boolean);
  return flag && off ? { flag, offWhen: off } : null;
}

function detachNetns(lines: string[]): ScriptModel["detachNetns"] {
  const found = findBlock(lines, /^case "\$DOCKERD_ROOTLESS_ROOTLESSKIT_DETACH_NETNS" in$/);
  if (found === null) return null;
  const arms = caseArms(found);
  const rewrite = arms.find((arm) => arm.body.some((line) => /^DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS="(.*)\$DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS"$/.test(line)));
  if (rewrite === undefined) return null;
  const prefix = /^DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS="(.*)\$DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS"$/.exec(rewrite.body.find((line) => line.startsWith(`${PREFIX}FLAGS=`))!)![1];
  const accepted = arms.filter((arm) => !arm.patterns.includes("*") && !arm.body.some((line) => /^exit\b/.test(line))).flatMap((arm) => arm.patterns);
  return { rewrites: rewrite.patterns, prefix: prefix.trim(), accepted };
}

/** The host facts that the script's auto-detection looks at. */
export type ScriptHost = Pick<HostFacts, "binaries" | "versions" | "xdgRuntimeDir">;

/** What the script would run: RootlessKit's flags, and why. */
export interface Invocation {
  /** The script's own words for RootlessKit (everything but the FLAGS expansion). */
  own: string[];
  /** The words of DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS as the script passes them (after its own rewrite), last. */
  flags: string[];
  /** The flags (`net`, `mtu`, `port-driver`; `*` = some word) whose value came from a default the text did not let us derive. */
  unknown: Set<string>;
  /** Where each variable-driven flag came from, for a plan's cause: "the script's default DETACH_NETNS=true". */
  defaulted: Map<string, string>;
  /** The script would exit before starting RootlessKit (e.g. a DETACH_NETNS it does not accept). */
  refused: string | null;
}

/**
 * The RootlessKit flags `model`'s script builds from `env` (the variables the unit's processes get) on this host,
 * as its parent branch does: defaults, auto-detection, the FLAGS rewrite, then `exec $rootlesskit … $FLAGS "$0"`.
 * Without the script's text, the variables are taken as the flags they name.
 */
export function scriptInvocation(model: ScriptModel, env: (suffix: string) => string | undefined, host: ScriptHost): Invocation {
  const unknown = new Set<string>();
  const defaulted = new Map<string, string>();
  const value = (suffix: string): string => {
    const given = model.reads.has(suffix) ? (env(suffix) ?? "") : "";
    if (given === "" && model.defaults[suffix] !== undefined && model.defaults[suffix] !== "") {
      // A default may name the runtime directory (STATE_DIR's `$XDG_RUNTIME_DIR/dockerd-rootless`).
      const fallback = model.defaults[suffix].replace(/\$\{?XDG_RUNTIME_DIR\}?/g, host.xdgRuntimeDir);
      defaulted.set(suffix, `the script's default ${PREFIX}${suffix}=${fallback}`);
      return fallback;
    }
    return given;
  };
  let refused: string | null = null;
  let flags = value("FLAGS");
  const detach = value("DETACH_NETNS");
  if (model.detachNetns !== null) {
    if (model.detachNetns.rewrites.includes(detach)) flags = `${model.detachNetns.prefix} ${flags}`;
    else if (!model.detachNetns.accepted.includes(detach)) refused = `the script exits on ${PREFIX}DETACH_NETNS=${detach}`;
  }
  const flagWords = flags.split(/[ \t\n]+/).filter((field) => field !== "");
  if (!model.known) return { own: genericWords(env, unknown), flags: flagWords, unknown, defaulted, refused };

  let net = value("NET");
  let autoDetected = false;
  if (net === "") {
    const chosen = model.netOrder?.find((entry) => entry.binary === null || detectable(entry.binary, host));
    if (chosen === undefined) unknown.add("net");
    else {
      net = chosen.driver;
      autoDetected = true;
      defaulted.set("NET", `the script's auto-detection (${PREFIX}NET unset) chose ${net}`);
    }
  }
  let mtu = value("MTU");
  if (mtu === "") {
    const rule = model.mtuDefault;
    if (rule === null || unknown.has("net")) unknown.add("mtu");
    else {
      mtu = autoDetected && rule.autoDetected?.driver === net ? rule.autoDetected.mtu : rule.byDriver?.drivers.includes(net) ? rule.byDriver.mtu : rule.otherwise;
      defaulted.set("MTU", `the script's default for ${PREFIX}MTU unset with --net=${net}${autoDetected ? " (auto-detected)" : " (explicit NET)"}: ${mtu}`);
    }
  }
  let portDriver = value("PORT_DRIVER");
  if (portDriver === "") {
    const rule = model.portDriverDefault;
    if (rule === null || unknown.has("net")) unknown.add("port-driver");
    else {
      portDriver = rule.byDriver[net] ?? rule.otherwise;
      defaulted.set("PORT_DRIVER", `the script's default for ${PREFIX}PORT_DRIVER unset with --net=${net}: ${portDriver}`);
    }
  }
  const loopback = model.hostLoopback === null ? "" : value("DISABLE_HOST_LOOPBACK") === model.hostLoopback.offWhen ? "" : model.hostLoopback.flag;
  const locals: Record<string, string | null> = {
    net: unknown.has("net") ? null : net,
    mtu: unknown.has("mtu") ? null : mtu,
    port_driver: unknown.has("port-driver") ? null : portDriver,
    host_loopback: loopback,
  };
  const own: string[] = [];
  for (const word of model.template) {
    if (/^"?\$\{?DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS\}?"?$/.test(word)) continue;
    let unresolved = false;
    const quoted = /^".*"$/.test(word);
    const expanded = word.replace(/^"|"$/g, "").replace(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g, (_, name: string) => {
      const local = name.startsWith(PREFIX) && !(name in locals) ? value(name.slice(PREFIX.length)) : locals[name];
      if (local === null || local === undefined) unresolved = true;
      return local ?? "";
    });
    // A word the model cannot tell is left out; its flag was marked unknown above (or, for an unexpected variable, `*`).
    if (unresolved) {
      if (!/\$\{?(net|mtu|port_driver)\b/.test(word)) unknown.add("*");
    } else if (quoted) own.push(expanded);
    // An unquoted expansion is split into fields (and an empty one disappears), as sh does.
    else own.push(...expanded.split(/[ \t\n]+/).filter((field) => field !== ""));
  }
  return { own, flags: flagWords, unknown, defaulted, refused };
}

/**
 * Without the script: each variable as the flag it names (what every dockerd-rootless.sh does with an explicit value),
 * and the flags every one since Docker 20.10 passes itself; a flag whose variable is unset cannot be told.
 */
function genericWords(env: (suffix: string) => string | undefined, unknown: Set<string>): string[] {
  const words = ["--copy-up=/etc", "--copy-up=/run", "--propagation=rslave"];
  const given = (suffix: string) => {
    const value = env(suffix);
    return value === undefined || value === "" ? null : value;
  };
  for (const [suffix, flag] of [["NET", "net"], ["MTU", "mtu"], ["SLIRP4NETNS_SANDBOX", "slirp4netns-sandbox"], ["SLIRP4NETNS_SECCOMP", "slirp4netns-seccomp"], ["PORT_DRIVER", "port-driver"]] as const) {
    const value = given(suffix);
    if (value !== null) words.push(`--${flag}=${value}`);
    else unknown.add(flag);
  }
  const loopback = given("DISABLE_HOST_LOOPBACK");
  if (loopback !== null) words.push(`--disable-host-loopback=${loopback !== "false"}`);
  else unknown.add("disable-host-loopback");
  const detach = given("DETACH_NETNS");
  if (detach !== null) words.push(`--detach-netns=${["1", "true"].includes(detach)}`);
  else unknown.add("detach-netns");
  return words;
}

/** `command -v BINARY` on the unit's PATH; slirp4netns counts only from 0.4.0 (the script greps its --help for --netns-type). */
function detectable(binary: string, host: ScriptHost): boolean {
  const path = (host.binaries as Record<string, string | null>)[binary];
  if (path === null || path === undefined) return false;
  if (binary === "slirp4netns" && host.versions.slirp4netns !== null) return compareVersions(host.versions.slirp4netns, "0.4.0") >= 0;
  return true;
}

/** "Docker 26.1.5's dockerd-rootless.sh (/usr/share/docker.io/contrib/dockerd-rootless.sh)", for messages. */
export function describeScript(model: ScriptModel, dockerd: string | null): string {
  return `${dockerd ? `Docker ${dockerd}'s ` : ""}dockerd-rootless.sh${model.path ? ` (${model.path})` : ""}`;
}
