/**
 * Everything one SSH exec learns about a host (`factsScript`), and the pure parser of its output.
 * Output lines are `RDN KEY FIELD…`; every field that carries host content is base64 (`-` = absent),
 * so no file content or process argument can break the framing.
 */
import { ROOTLESSKIT_FUNCTIONS, SESSION_PRELUDE, fromBase64, shellQuote } from "./scripts";
import type { DropInFile, HostFacts, RunningDaemon, UnitState } from "./types";

export interface FactsParams {
  unit: string;
  dropInName: string;
}

const SHOW_PROPERTIES = [
  "LoadState",
  "MainPID",
  "ActiveState",
  "SubState",
  "ExecMainPID",
  "InvocationID",
  "NeedDaemonReload",
  "Environment",
  "DropInPaths",
  "FragmentPath",
  "ExecMainStartTimestamp",
];

const VERSION_COMMANDS = ["rootlesskit", "pasta", "slirp4netns", "dockerd"] as const;
const BINARIES = ["rootlesskit", "pasta", "slirp4netns", "vpnkit", "lxc-user-nic", "nsenter"] as const;

export function factsScript(params: FactsParams): string {
  const show = SHOW_PROPERTIES.map((property) => `-p ${property}`).join(" ");
  return `#!/bin/sh
${SESSION_PRELUDE}${ROOTLESSKIT_FUNCTIONS}unit=${shellQuote(params.unit)}
dropin_name=${shellQuote(params.dropInName)}
rdn_text() { printf 'RDN %s %s\\n' "$1" "$(printf '%s' "$2" | rdn_b64)"; }
rdn_file() { if [ -f "$2" ] && [ -r "$2" ]; then printf 'RDN %s %s\\n' "$1" "$(rdn_b64 < "$2")"; else printf 'RDN %s -\\n' "$1"; fi; }
rdn_yes() { if "$@" >/dev/null 2>&1; then echo yes; else echo no; fi; }
echo 'RDN begin 1'
user=$(id -un)
HOME=\${HOME:-$(getent passwd "$user" | cut -d: -f6)}
rdn_text user "$user"
rdn_text uid "$(id -u)"
rdn_text home "$HOME"
rdn_text xdg "$XDG_RUNTIME_DIR"
echo "RDN usermanager $(rdn_yes systemctl --user show-environment)"
echo "RDN linger $(rdn_yes test -e "/var/lib/systemd/linger/$user")"
rdn_file pinggrouprange /proc/sys/net/ipv4/ping_group_range
show=$(systemctl --user show "$unit" ${show} 2>/dev/null) || show=
rdn_text show "$show"
dropin="$HOME/.config/systemd/user/$unit.d/$dropin_name"
rdn_text dropinpath "$dropin"
rdn_file dropin "$dropin"
# systemd prints DropInPaths as shell words (shell_maybe_quote: "$", "\`", "\\\\" and '"' escaped inside
# double quotes), so eval with globbing off splits them exactly and expands nothing. The subshell keeps
# an unexpected parse error from ending the whole script.
(
  set -f
  eval "set -- $(printf '%s\\n' "$show" | sed -n 's/^DropInPaths=//p')"
  set +f
  for path in "$@"; do
    [ "$path" = "$dropin" ] && continue
    if [ -f "$path" ] && [ -r "$path" ]; then echo "RDN other $(printf '%s' "$path" | rdn_b64) $(rdn_b64 < "$path")"; fi
  done
)
# MainPID, not ExecMainPID: the latter keeps the PID of a process that has already exited.
main_pid=$(printf '%s\\n' "$show" | sed -n 's/^MainPID=//p')
case $main_pid in ''|0|*[!0-9]*) main_pid= ;; esac
echo "RDN mainpid \${main_pid:--}"
if [ -n "$main_pid" ]; then
  rdn_file maincmdline "/proc/$main_pid/cmdline"
  # Only the DOCKERD_ROOTLESS_* entries leave the host; newlines inside values survive as \\001.
  if [ -r "/proc/$main_pid/environ" ]; then
    echo "RDN mainenv $(tr '\\n\\0' '\\001\\n' < "/proc/$main_pid/environ" | grep '^DOCKERD_ROOTLESS_' | tr '\\n\\001' '\\0\\n' | rdn_b64)"
  fi
  state_dir=$(rdn_state_dir "$main_pid")
  rdn_text statedir "$state_dir"
  echo "RDN childpid $(rdn_child_pid "$state_dir" || echo -)"
fi
# The user's own network helpers; test -O and read are builtins, so scanning /proc forks only on a match.
for dir in /proc/[0-9]*; do
  [ -O "$dir" ] || continue
  read -r comm < "$dir/comm" 2>/dev/null || continue
  case $comm in
    rootlesskit|docker-rootless*|pasta|pasta.*|passt|passt.*|slirp4netns)
      ppid=$(sed -n 's/^PPid:[[:space:]]*//p' "$dir/status" 2>/dev/null)
      echo "RDN proc \${dir#/proc/} \${ppid:-0} $(printf '%s' "$comm" | rdn_b64) $(rdn_b64 < "$dir/cmdline" 2>/dev/null)" ;;
  esac
done
# pasta prints its version only to a terminal: retry under script(1) (util-linux, always installed).
rdn_version() {
  rdn_v=$("$1" --version 2>/dev/null </dev/null | head -n 1)
  [ -n "$rdn_v" ] || ! command -v "$1" >/dev/null 2>&1 || rdn_v=$(script -q -c "$1 --version" /dev/null 2>/dev/null </dev/null | head -n 1 | tr -d '\r')
  rdn_text "version.$1" "$rdn_v"
}
${VERSION_COMMANDS.map((command) => `rdn_version ${command}`).join("\n")}
${BINARIES.map((name) => `rdn_text bin.${name} "$(command -v ${name} 2>/dev/null)"`).join("\n")}
rdn_text daemonjsonpath "$HOME/.config/docker/daemon.json"
rdn_file daemonjson "$HOME/.config/docker/daemon.json"
rdn_text compatpath "$HOME/.local/lib/pulumi-rootless-docker/pasta-ipv6-compat.sh"
rdn_file compat "$HOME/.local/lib/pulumi-rootless-docker/pasta-ipv6-compat.sh"
echo 'RDN end'
`;
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
  others: DropInFile[];
  processes: ProcessEntry[];
  complete: boolean;
}

function readLines(stdout: string): RawFacts {
  const values = new Map<string, string | null>();
  const others: DropInFile[] = [];
  const processes: ProcessEntry[] = [];
  let begun = false;
  let ended = false;
  for (const line of stdout.split("\n")) {
    const [marker, key, ...fields] = line.trim().split(" ");
    if (marker !== "RDN" || key === undefined) continue;
    const decode = (field: string | undefined): string | null => (field === undefined || field === "-" ? null : fromBase64(field));
    if (key === "begin") begun = true;
    else if (key === "end") ended = true;
    else if (key === "other") others.push({ path: decode(fields[0]) ?? "", content: decode(fields[1]) ?? "" });
    else if (key === "proc") {
      processes.push({ pid: Number(fields[0]), ppid: Number(fields[1]), comm: decode(fields[2]) ?? "", argv: splitNul(decode(fields[3]) ?? "") });
    } else if (["usermanager", "linger", "mainpid", "childpid"].includes(key)) values.set(key, fields[0] === "-" ? null : (fields[0] ?? null));
    else values.set(key, decode(fields[0]));
  }
  return { values, others, processes, complete: begun && ended };
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

const basename = (path: string): string => path.slice(path.lastIndexOf("/") + 1);
const ROOTLESSKIT_NAMES = ["rootlesskit", "docker-rootlesskit"];

function runningDaemon(raw: RawFacts, mainPid: number | null): RunningDaemon {
  if (mainPid === null) return { rootlesskitArgv: null, environment: {}, pastaArgv: null, slirp4netnsArgv: null, childPid: null };
  const mainArgv = splitNul(raw.values.get("maincmdline") ?? "");
  // dockerd-rootless.sh execs RootlessKit, so the main PID normally is it; a wrapper would make it the parent.
  const rootlesskit: ProcessEntry | undefined = ROOTLESSKIT_NAMES.includes(basename(mainArgv[0] ?? ""))
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
    dropIn: { path: dropInPath, content: text("dropin") },
    otherDropIns: raw.others.filter((file) => file.path !== dropInPath),
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
  };
}
