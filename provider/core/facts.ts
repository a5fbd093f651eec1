/**
 * Everything one SSH exec learns about a host (`factsScript`), and the pure parser of its output.
 * Output lines are `RDN KEY FIELD…`; every field that carries host content is base64 (`-` = absent),
 * so no file content or process argument can break the framing.
 */
import { baseName } from "./dropin";
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
const TOOLS = [...new Set([...VERSION_COMMANDS, ...BINARIES])];

/**
 * awk that prints `RDN KEY BASE64` for every value rdn_text collected (RFC 4648 base64; run with
 * LC_ALL=C, so a character is a byte and `%c` of 128…255 is that byte).
 */
const AWK_TEXT_LINES = `function base64(bytes,    out, i, n, triple) {
  n = length(bytes)
  out = ""
  for (i = 1; i <= n; i += 3) {
    triple = code[substr(bytes, i, 1)] * 65536 + code[substr(bytes, i + 1, 1)] * 256 + code[substr(bytes, i + 2, 1)]
    out = out substr(alphabet, int(triple / 262144) + 1, 1) substr(alphabet, int(triple / 4096) % 64 + 1, 1)
    out = out (i + 1 <= n ? substr(alphabet, int(triple / 64) % 64 + 1, 1) : "=") (i + 2 <= n ? substr(alphabet, triple % 64 + 1, 1) : "=")
  }
  return out
}
BEGIN {
  alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
  for (i = 1; i < 256; i++) code[sprintf("%c", i)] = i
  count = ENVIRON["RDN_TEXT_COUNT"] + 0
  for (i = 1; i <= count; i++) print "RDN " ENVIRON["RDN_TEXT_KEY_" i] " " base64(ENVIRON["RDN_TEXT_VALUE_" i])
}`;

/** The shell variable that holds where a tool is (`lxc-user-nic` → `path_lxc_user_nic`). */
const pathVariable = (tool: string): string => `path_${tool.replace(/[^A-Za-z0-9]/g, "_")}`;
const versionVariable = (command: string): string => `version_${command}`;

/**
 * The script forks as little as it can: every fork and exec costs host CPU, and in a fleet plan the
 * hosts' CPU is what the plan waits for. Properties are cut out of `systemctl show` with parameter
 * expansion instead of sed, /proc is read with `read` and `[ -O ]` (builtins), and `--version` runs
 * only when a binary changed (see the version cache below).
 */
export function factsScript(params: FactsParams): string {
  const show = SHOW_PROPERTIES.map((property) => `-p ${property}`).join(" ");
  const versionPaths = VERSION_COMMANDS.map((command) => `"$${pathVariable(command)}"`).join(" ");
  const versionKeyNames = VERSION_COMMANDS.map((command) => `${command}=$${pathVariable(command)}`).join(" ");
  const readVersions = VERSION_COMMANDS.map((command) => `IFS= read -r ${versionVariable(command)}`).join(" && ");
  const versionLines = VERSION_COMMANDS.map((command) => `"$${versionVariable(command)}"`).join(" ");
  return `#!/bin/sh
${SESSION_PRELUDE}${ROOTLESSKIT_FUNCTIONS}unit=${shellQuote(params.unit)}
dropin_name=${shellQuote(params.dropInName)}
nl='
'
# Text values are collected and encoded by one awk at the end (rdn_text_flush) instead of one base64
# process each; LC_ALL=C makes awk see bytes, so the result is base64 of the exact bytes of the value.
rdn_text_count=0
rdn_text() {
  rdn_text_count=$((rdn_text_count + 1))
  eval "RDN_TEXT_KEY_$rdn_text_count=\\$1 RDN_TEXT_VALUE_$rdn_text_count=\\$2"
  export "RDN_TEXT_KEY_$rdn_text_count" "RDN_TEXT_VALUE_$rdn_text_count"
}
rdn_text_flush() {
  RDN_TEXT_COUNT=$rdn_text_count LC_ALL=C awk '${AWK_TEXT_LINES}'
}
rdn_file() { if [ -f "$2" ] && [ -r "$2" ]; then printf 'RDN %s %s\\n' "$1" "$(rdn_b64 < "$2")"; else printf 'RDN %s -\\n' "$1"; fi; }
rdn_yes() { if "$@" >/dev/null 2>&1; then echo yes; else echo no; fi; }
# The value of property $1 in $show (one Name=value a line), empty when absent; no fork, unlike sed.
rdn_show_property() {
  rdn_pv="$nl$show$nl"
  case $rdn_pv in
    *"$nl$1="*) rdn_pv=\${rdn_pv#*"$nl$1="}; rdn_pv=\${rdn_pv%%"$nl"*} ;;
    *) rdn_pv= ;;
  esac
}
echo 'RDN begin 1'
user=$(id -un)
HOME=\${HOME:-$(getent passwd "$user" | cut -d: -f6)}
rdn_text user "$user"
rdn_text uid "$(id -u)"
rdn_text home "$HOME"
rdn_text xdg "$XDG_RUNTIME_DIR"
if [ -e "/var/lib/systemd/linger/$user" ]; then echo 'RDN linger yes'; else echo 'RDN linger no'; fi
rdn_file pinggrouprange /proc/sys/net/ipv4/ping_group_range
# show fails only when the user manager does not answer (or refuses the unit name): only then is
# show-environment needed to tell the two apart.
if show=$(systemctl --user show "$unit" ${show} 2>/dev/null); then
  echo 'RDN usermanager yes'
else
  show=
  echo "RDN usermanager $(rdn_yes systemctl --user show-environment)"
fi
rdn_text show "$show"
dropin="$HOME/.config/systemd/user/$unit.d/$dropin_name"
rdn_text dropinpath "$dropin"
rdn_file dropin "$dropin"
# systemd prints DropInPaths as shell words (shell_maybe_quote: "$", "\`", "\\\\" and '"' escaped inside
# double quotes), so eval with globbing off splits them exactly and expands nothing. The subshell keeps
# an unexpected parse error from ending the whole script.
rdn_show_property DropInPaths
(
  set -f
  eval "set -- $rdn_pv"
  set +f
  for path in "$@"; do
    [ "$path" = "$dropin" ] && continue
    if [ -f "$path" ] && [ -r "$path" ]; then echo "RDN other $(printf '%s' "$path" | rdn_b64) $(rdn_b64 < "$path")"; fi
  done
)
# MainPID, not ExecMainPID: the latter keeps the PID of a process that has already exited.
rdn_show_property MainPID
main_pid=$rdn_pv
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
# The PPid is the field after the state in /proc/PID/stat, after the last ") " (comm may hold anything).
for dir in /proc/[0-9]*; do
  [ -O "$dir" ] || continue
  read -r comm < "$dir/comm" 2>/dev/null || continue
  case $comm in
    rootlesskit|docker-rootless*|pasta|pasta.*|passt|passt.*|slirp4netns)
      ppid=
      if read -r stat < "$dir/stat" 2>/dev/null; then stat=\${stat##*") "}; ppid=\${stat#* }; ppid=\${ppid%% *}; fi
      printf 'RDN proc %s %s ' "\${dir#/proc/}" "\${ppid:-0}"
      printf '%s' "$comm" | rdn_b64
      printf ' '
      rdn_b64 < "$dir/cmdline" 2>/dev/null
      echo ;;
  esac
done
${TOOLS.map((tool) => `${pathVariable(tool)}=$(command -v ${tool} 2>/dev/null)`).join("\n")}
${BINARIES.map((name) => `rdn_text bin.${name} "$${pathVariable(name)}"`).join("\n")}
# pasta prints its version only to a terminal: retry under script(1) (util-linux, always installed).
rdn_run_version() {
  [ -n "$2" ] || return 0
  rdn_v=$("$1" --version 2>/dev/null </dev/null | head -n 1)
  [ -n "$rdn_v" ] || rdn_v=$(script -q -c "$1 --version" /dev/null 2>/dev/null </dev/null | head -n 1 | tr -d '\\r')
  printf '%s\\n' "$rdn_v"
}
# Starting dockerd, RootlessKit and pasta just to print a version is most of the script's CPU time, and
# a version only changes with the binary. So the four lines are kept in $XDG_RUNTIME_DIR (a tmpfs of
# this user, gone at reboot) under a key of each binary's path, device, inode, size, and mtime and ctime
# in nanoseconds: any install, replacement or rewrite changes the key, and the versions are read afresh.
# Without such a key (no runtime dir of ours, stat failing) nothing is cached.
versions_cache="$XDG_RUNTIME_DIR/pulumi-rootless-docker/versions"
versions_key=
if [ -d "$XDG_RUNTIME_DIR" ] && [ -O "$XDG_RUNTIME_DIR" ]; then
  set --
  for path in ${versionPaths}; do [ -z "$path" ] || set -- "$@" "$path"; done
  if [ $# -gt 0 ] && stat_key=$(stat -L --printf '%d:%i:%s:%.9Y:%.9Z;' -- "$@" 2>/dev/null); then versions_key="${versionKeyNames} $stat_key"; fi
fi
if [ -n "$versions_key" ] && [ -f "$versions_cache" ] && { IFS= read -r cached_key && ${readVersions}; } < "$versions_cache" && [ "$cached_key" = "$versions_key" ]; then
  :
else
${VERSION_COMMANDS.map((command) => `  ${versionVariable(command)}=$(rdn_run_version ${command} "$${pathVariable(command)}")`).join("\n")}
  if [ -n "$versions_key" ] && mkdir -p "\${versions_cache%/*}" 2>/dev/null; then
    printf '%s\\n' "$versions_key" ${versionLines} > "$versions_cache.$$" 2>/dev/null && mv -f "$versions_cache.$$" "$versions_cache" 2>/dev/null || rm -f "$versions_cache.$$"
  fi
fi
${VERSION_COMMANDS.map((command) => `rdn_text version.${command} "$${versionVariable(command)}"`).join("\n")}
rdn_text daemonjsonpath "$HOME/.config/docker/daemon.json"
rdn_file daemonjson "$HOME/.config/docker/daemon.json"
rdn_text compatpath "$HOME/.local/lib/pulumi-rootless-docker/pasta-ipv6-compat.sh"
rdn_file compat "$HOME/.local/lib/pulumi-rootless-docker/pasta-ipv6-compat.sh"
rdn_text_flush
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
