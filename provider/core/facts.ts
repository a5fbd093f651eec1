/**
 * Everything one SSH exec learns about a host (provider/remote/facts.sh), and the pure parser of its output.
 * Output lines are `RDN KEY FIELD…`; every field that carries host content is base64 (`-` = absent),
 * so no file content or process argument can break the framing.
 */
import { canonicalIpv6 } from "./address";
import { baseName } from "./dropin";
import { remoteScript } from "./remote";
import { fromBase64 } from "./scripts";
import { dropInDirNames } from "./sources";
import type { DropInFile, HostFacts, RunningDaemon, UnitFileOnDisk, UnitState } from "./types";

export interface FactsParams {
  unit: string;
  dropInName: string;
  /** The image the verification will run a bridge container from: asked for only when it will be used. */
  probeImage?: string;
}

/** provider/remote/facts.sh with its parameters: the unit, our drop-in's name, and the drop-in directories to read. */
export function factsScript(params: FactsParams): string {
  return remoteScript("facts", { unit: params.unit, dropin_name: params.dropInName, dropin_dirs: dropInDirNames(params.unit).join("\n"), probe_image: params.probeImage ?? "" });
}

// ---------------------------------------------------------------------------------------------
// parse

interface ProcessEntry {
  pid: number;
  ppid: number;
  comm: string;
  argv: string[];
}

interface RawFacts {
  values: Map<string, string | null>;
  unitFiles: UnitFileOnDisk[];
  environmentFiles: { path: string; content: string | null }[];
  environmentD: DropInFile[];
  processes: ProcessEntry[];
  complete: boolean;
}

function readLines(stdout: string): RawFacts {
  const values = new Map<string, string | null>();
  const unitFiles: UnitFileOnDisk[] = [];
  const environmentFiles: RawFacts["environmentFiles"] = [];
  const environmentD: DropInFile[] = [];
  const processes: ProcessEntry[] = [];
  let begun = false;
  let ended = false;
  for (const line of stdout.split("\n")) {
    const [marker, key, ...fields] = line.trim().split(" ");
    if (marker !== "RDN" || key === undefined) continue;
    const decode = (field: string | undefined): string | null => (field === undefined || field === "-" ? null : fromBase64(field));
    if (key === "begin") begun = true;
    else if (key === "end") ended = true;
    else if (key === "file" && (fields[0] === "fragment" || fields[0] === "dropin")) {
      unitFiles.push({ kind: fields[0], path: decode(fields[1]) ?? "", content: fields[2] === "null" ? null : (decode(fields[2]) ?? "") });
    } else if (key === "envfile") environmentFiles.push({ path: decode(fields[0]) ?? "", content: decode(fields[1]) });
    else if (key === "environmentd") environmentD.push({ path: decode(fields[0]) ?? "", content: decode(fields[1]) ?? "" });
    else if (key === "proc") {
      processes.push({ pid: Number(fields[0]), ppid: Number(fields[1]), comm: decode(fields[2]) ?? "", argv: splitNul(decode(fields[3]) ?? "") });
    } else if (["usermanager", "linger", "mainpid", "childpid", "unitpathguessed"].includes(key)) values.set(key, fields[0] === "-" ? null : (fields[0] ?? null));
    else values.set(key, decode(fields[0]));
  }
  return { values, unitFiles, environmentFiles, environmentD, processes, complete: begun && ended };
}

/** `/proc/*\/cmdline` and `environ` are NUL-terminated entries. */
function splitNul(text: string): string[] {
  const parts = text.split("\0");
  if (parts[parts.length - 1] === "") parts.pop();
  return parts;
}

function positiveInt(text: string | null | undefined): number | null {
  if (text === null || text === undefined || !/^\d+$/.test(text.trim())) return null;
  const value = Number(text.trim());
  return value > 0 ? value : null;
}

/** `systemctl show` output: one `Name=value` per line. */
function showProperties(text: string): Map<string, string> {
  const properties = new Map<string, string>();
  for (const line of text.split("\n")) {
    const at = line.indexOf("=");
    if (at > 0) properties.set(line.slice(0, at), line.slice(at + 1));
  }
  return properties;
}

/**
 * Splits an `as` property the way systemctl prints it (systemd 252 and 257, `bus_print_property` →
 * `shell_maybe_quote(s, 0)`): words separated by one space; a word that contains whitespace, a control
 * character, invalid UTF-8 or one of `"\`$*?['()<>|&;!` is wrapped in double quotes, with `"`, `\`,
 * `` ` `` and `$` backslash-escaped and control or invalid bytes C-escaped (`\n`, `\t`, `\ooo`).
 */
export function splitSystemctlWords(value: string): string[] {
  const words: string[] = [];
  let index = 0;
  while (index < value.length) {
    if (value[index] === " ") {
      index++;
      continue;
    }
    if (value[index] !== '"') {
      const end = value.indexOf(" ", index);
      words.push(value.slice(index, end < 0 ? value.length : end));
      index = end < 0 ? value.length : end;
      continue;
    }
    const bytes: number[] = [];
    index++;
    while (index < value.length && value[index] !== '"') {
      if (value[index] !== "\\" || index + 1 >= value.length) {
        const codePoint = value.codePointAt(index)!;
        const char = String.fromCodePoint(codePoint);
        bytes.push(...Buffer.from(char, "utf8"));
        index += char.length;
        continue;
      }
      const next = value[index + 1];
      const octal = /^[0-7]{3}/.exec(value.slice(index + 1, index + 4));
      if (octal) {
        bytes.push(parseInt(octal[0], 8) & 0xff);
        index += 4;
      } else {
        bytes.push((C_ESCAPES[next] ?? next).charCodeAt(0));
        index += 2;
      }
    }
    index++; // closing quote
    words.push(Buffer.from(bytes).toString("utf8"));
  }
  return words;
}

const C_ESCAPES: Record<string, string> = { a: "\x07", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t", v: "\v", s: " " };

/** The `Environment=` property of `systemctl show`: the merged assignments of the unit and its drop-ins. */
export function parseSystemctlEnvironment(value: string): Record<string, string> {
  const environment: Record<string, string> = {};
  for (const word of splitSystemctlWords(value)) {
    const at = word.indexOf("=");
    if (at > 0) environment[word.slice(0, at)] = word.slice(at + 1);
  }
  return environment;
}

/**
 * `systemctl --user show-environment` lines (`NAME=value`; a value with special characters is printed as
 * `$'…'` with C escapes since systemd 250).
 */
function managerEnvironment(text: string): Record<string, string> {
  const environment: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const at = line.indexOf("=");
    if (at <= 0) continue;
    const value = line.slice(at + 1);
    environment[line.slice(0, at)] = value.startsWith("$'") && value.endsWith("'") ? unescapeC(value.slice(2, -1)) : value;
  }
  return environment;
}

function unescapeC(text: string): string {
  return text.replace(/\\(x[0-9a-fA-F]{2}|[0-7]{3}|.)/g, (_, escape: string) => {
    if (escape.startsWith("x") && escape.length === 3) return String.fromCharCode(parseInt(escape.slice(1), 16));
    if (/^[0-7]{3}$/.test(escape)) return String.fromCharCode(parseInt(escape, 8));
    return C_ESCAPES[escape] ?? escape;
  });
}

function unitState(showText: string | null | undefined): UnitState {
  const properties = showProperties(showText ?? "");
  const get = (name: string): string => properties.get(name) ?? "";
  return {
    loaded: get("LoadState") === "loaded",
    activeState: get("ActiveState"),
    subState: get("SubState"),
    execMainPID: positiveInt(get("ExecMainPID")) ?? 0,
    invocationId: get("InvocationID"),
    needDaemonReload: get("NeedDaemonReload") === "yes",
    environment: parseSystemctlEnvironment(get("Environment")),
    dropInPaths: splitSystemctlWords(get("DropInPaths")),
    fragmentPath: get("FragmentPath"),
    startedAt: get("ExecMainStartTimestamp"),
  };
}

const ROOTLESSKIT_NAMES = ["rootlesskit", "docker-rootlesskit"];

function runningDaemon(raw: RawFacts, mainPid: number | null): RunningDaemon {
  if (mainPid === null) return { rootlesskitArgv: null, environment: {}, pastaArgv: null, slirp4netnsArgv: null, childPid: null };
  const mainArgv = splitNul(raw.values.get("maincmdline") ?? "");
  // dockerd-rootless.sh execs RootlessKit, so the main PID normally is it; a wrapper would make it the parent.
  const rootlesskit: ProcessEntry | undefined = ROOTLESSKIT_NAMES.includes(baseName(mainArgv[0] ?? ""))
    ? { pid: mainPid, ppid: 0, comm: "rootlesskit", argv: mainArgv }
    : raw.processes.find((entry) => entry.ppid === mainPid && ROOTLESSKIT_NAMES.some((name) => name.startsWith(entry.comm)));
  const helper = (pattern: RegExp): string[] | null =>
    rootlesskit === undefined ? null : (raw.processes.find((entry) => entry.ppid === rootlesskit.pid && pattern.test(entry.comm))?.argv ?? null);
  const environment: Record<string, string> = {};
  for (const entry of splitNul(raw.values.get("mainenv") ?? "")) {
    const at = entry.indexOf("=");
    if (at > 0 && entry.startsWith("DOCKERD_ROOTLESS_")) environment[entry.slice(0, at)] = entry.slice(at + 1);
  }
  return {
    rootlesskitArgv: rootlesskit?.argv ?? null,
    environment,
    pastaArgv: helper(/^(pasta|passt)(\.|$)/),
    slirp4netnsArgv: helper(/^slirp4netns$/),
    childPid: positiveInt(raw.values.get("childpid")),
  };
}

/** The version word after the program name: "rootlesskit version 2.0.2" → "2.0.2", "pasta 0^2025…" → "0^2025…". */
export function versionFromOutput(output: string | null | undefined): string | null {
  const firstLine = (output ?? "").split("\n")[0].trim();
  const match = /^\S+\s+(?:version\s+)?(\S+?),?(?:\s|$)/i.exec(firstLine);
  return match ? match[1] : null;
}

function parseRange(text: string | null | undefined): [number, number] | null {
  const match = /^\s*(\d+)\s+(\d+)\s*$/.exec(text ?? "");
  return match ? [Number(match[1]), Number(match[2])] : null;
}

/** Addresses as /proc/net writes them (32 hex digits each, space-separated) in RFC 5952 form, without duplicates. */
export function procAddresses(value: string | null): string[] {
  const words = (value ?? "").split(/\s+/).filter((word) => /^[0-9a-f]{32}$/i.test(word));
  const addresses = words.map((word) => canonicalIpv6(word.match(/.{4}/g)!.join(":"))!);
  return [...new Set(addresses)];
}

/**
 * Turns the output of `factsScript` into `HostFacts`. Anything the host did not report is null/false.
 * Throws when the output is not the script's at all (no begin/end markers: cut off or another program).
 */
export function parseFacts(stdout: string, params: FactsParams): HostFacts {
  const raw = readLines(stdout);
  if (!raw.complete) throw new Error(`facts output is incomplete (no "RDN begin"/"RDN end" markers); got ${stdout.length} characters`);
  const text = (key: string): string | null => raw.values.get(key) ?? null;
  const home = text("home") ?? "";
  const unit = unitState(text("show"));
  const userManager = text("usermanager") === "yes";
  const dropInPath = text("dropinpath") ?? `${home}/.config/systemd/user/${params.unit}.d/${params.dropInName}`;
  const emptyToNull = (value: string | null): string | null => (value === null || value.trim() === "" ? null : value.trim());
  return {
    user: text("user") ?? "",
    uid: Number(text("uid") ?? "-1"),
    home,
    xdgRuntimeDir: text("xdg") ?? "",
    userManager,
    linger: text("linger") === "yes",
    pingGroupRange: parseRange(text("pinggrouprange")),
    hostIpv6: { addresses: procAddresses(text("hostaddresses")), defaultGateways: procAddresses(text("hostgateways")) },
    dropIn: { path: dropInPath, content: text("dropin") },
    unitPath: splitSystemctlWords(text("unitpath") ?? ""),
    unitFiles: raw.unitFiles,
    // A glob naming the same file twice, or two lines naming one file, send it once each time: keep one.
    environmentFiles: [...new Map(raw.environmentFiles.map((file) => [file.path, file])).values()],
    managerEnvironment: managerEnvironment(text("managerenv") ?? ""),
    environmentD: raw.environmentD,
    execStart: { path: emptyToNull(text("execpath")), script: text("execscript") },
    unit,
    running: runningDaemon(raw, positiveInt(text("mainpid"))),
    versions: {
      rootlesskit: versionFromOutput(text("version.rootlesskit")),
      pasta: versionFromOutput(text("version.pasta")),
      slirp4netns: versionFromOutput(text("version.slirp4netns")),
      dockerd: versionFromOutput(text("version.dockerd")),
    },
    binaries: {
      rootlesskit: emptyToNull(text("bin.rootlesskit")),
      pasta: emptyToNull(text("bin.pasta")),
      slirp4netns: emptyToNull(text("bin.slirp4netns")),
      vpnkit: emptyToNull(text("bin.vpnkit")),
      "lxc-user-nic": emptyToNull(text("bin.lxc-user-nic")),
      nsenter: emptyToNull(text("bin.nsenter")),
    },
    daemonJson: { path: text("daemonjsonpath") ?? `${home}/.config/docker/daemon.json`, content: text("daemonjson") },
    compatScript: { path: text("compatpath") ?? `${home}/.local/lib/pulumi-rootless-docker/pasta-ipv6-compat.sh`, content: text("compat") },
    ...(params.probeImage === undefined ? {} : { probeImage: { image: params.probeImage, present: { yes: true, no: false }[text("probeimage") ?? ""] ?? null } }),
  };
}
