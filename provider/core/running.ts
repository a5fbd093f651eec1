/**
 * RootlessKit's command line read as RootlessKit reads it, and the networking it puts in force. RootlessKit
 * (cmd/rootlesskit/main.go, 1.x to 3.x) declares its flags with urfave/cli v2, which hands them to Go's `flag`
 * package (parse.go: parseIter → FlagSet.Parse; no short-option handling, no environment variables for any flag):
 * `-name` and `--name` alike, `--name=value` or `--name value` (a value flag takes the next word, whatever it is), a
 * boolean only as `--name` or `--name=VALUE` (strconv.ParseBool), the last occurrence of a flag wins (StringSlice
 * flags such as `--copy-up` collect every one), and parsing stops at the first word that is not a flag (the child
 * command, e.g. dockerd-rootless.sh again) or after `--`. Pure.
 */
import { NETWORK_DRIVERS, PORT_DRIVERS, type NetworkDriver, type PortDriver } from "./types";

/** RootlessKit's boolean flags (1.1.0 to 3.x, plus urfave's own help and version): they never take the next word. */
const BOOLEAN_FLAGS = new Set(["debug", "disable-host-loopback", "ipv6", "source-ip-transparent", "pidns", "cgroupns", "utsns", "ipcns", "detach-netns", "help", "h", "version", "v"]);
/** StringSlice flags: every occurrence adds to the list. */
const LIST_FLAGS = new Set(["copy-up", "publish"]);
const ALIASES: Record<string, string> = { p: "publish" };

/** One flag as RootlessKit took it: its canonical name and value (`true`/`false` for booleans). */
export interface ParsedFlag {
  name: string;
  value: string;
}

export interface ParsedArgv {
  /** Every flag in command-line order (the words `--mtu 1500` give one entry). */
  flags: ParsedFlag[];
  /** The child command and its arguments (not RootlessKit's). */
  command: string[];
  /** Set when RootlessKit would refuse the command line (`--ipv6=yes`, `--mtu=x`, a value flag at the end). */
  error: string | null;
}

/** strconv.ParseBool. */
function parseBool(text: string): boolean | null {
  if (["1", "t", "T", "TRUE", "true", "True"].includes(text)) return true;
  if (["0", "f", "F", "FALSE", "false", "False"].includes(text)) return false;
  return null;
}

/** strconv.ParseInt(text, 0, 64), as Go's flag package reads an int flag: sign, 0x/0o/0b or a leading 0 (octal), underscores after a prefix. */
export function parseGoInt(text: string): number | null {
  const match = /^([+-]?)(0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|0[0-7_]*|[1-9][0-9]*)$/.exec(text);
  if (!match) return null;
  const body = match[2];
  const prefixed = /^0[xXoObB]/.test(body) || (body.length > 1 && body.startsWith("0"));
  if (body.includes("_") && (!prefixed || /__|_$|^0[xXoObB]?_?$/.test(body))) return null;
  const digits = body.replace(/_/g, "");
  const value = /^0[xX]/.test(digits) ? parseInt(digits.slice(2), 16) : /^0[oO]/.test(digits) ? parseInt(digits.slice(2), 8) : /^0[bB]/.test(digits) ? parseInt(digits.slice(2), 2) : digits.length > 1 && digits.startsWith("0") ? parseInt(digits.slice(1), 8) : parseInt(digits, 10);
  return Number.isSafeInteger(value) ? (match[1] === "-" ? -value : value) : null;
}

/** The words after the program name, parsed as RootlessKit's FlagSet.Parse does. */
export function parseRootlessKitArgv(words: readonly string[]): ParsedArgv {
  const flags: ParsedFlag[] = [];
  let index = 0;
  while (index < words.length) {
    const word = words[index];
    if (word.length < 2 || !word.startsWith("-")) break;
    const dashes = word.startsWith("--") ? 2 : 1;
    if (word === "--") {
      index++;
      break;
    }
    const body = word.slice(dashes);
    if (body === "" || body.startsWith("-") || body.startsWith("=")) return { flags, command: words.slice(index), error: `bad flag syntax: ${word}` };
    const equals = body.indexOf("=");
    const raw = equals < 0 ? body : body.slice(0, equals);
    const name = ALIASES[raw] ?? raw;
    index++;
    if (BOOLEAN_FLAGS.has(name)) {
      const value = equals < 0 ? true : parseBool(body.slice(equals + 1));
      if (value === null) return { flags, command: words.slice(index), error: `invalid boolean value "${body.slice(equals + 1)}" for -${raw}` };
      flags.push({ name, value: String(value) });
      continue;
    }
    let value: string;
    if (equals >= 0) value = body.slice(equals + 1);
    else if (index < words.length) value = words[index++];
    else return { flags, command: [], error: `flag needs an argument: -${raw}` };
    if (name === "mtu") {
      const mtu = parseGoInt(value);
      if (mtu === null) return { flags, command: words.slice(index), error: `invalid value "${value}" for flag -mtu` };
      value = String(mtu);
    }
    flags.push({ name, value });
  }
  return { flags, command: words.slice(index), error: null };
}

/** The value RootlessKit uses: the last occurrence (for list flags, all of them joined by a space); undefined = not given. */
export function flagValue(parsed: ParsedArgv, name: string): string | undefined {
  const values = parsed.flags.filter((flag) => flag.name === name).map((flag) => flag.value);
  if (values.length === 0) return undefined;
  return LIST_FLAGS.has(name) ? values.join(" ") : values[values.length - 1];
}

/** `--name=value`, or `--name` for a boolean that is true: how a flag is shown and compared. */
export function flagWord(flag: ParsedFlag): string {
  if (BOOLEAN_FLAGS.has(flag.name)) return flag.value === "true" ? `--${flag.name}` : `--${flag.name}=false`;
  return `--${flag.name}=${flag.value}`;
}

/** What the running daemon has in force, read from the RootlessKit command line (the only full truth: the API has no IPv6 flag or MTU). */
export interface RunningNetwork {
  /** `--net` of the running RootlessKit; null when none runs. */
  networkDriver: NetworkDriver | null;
  /** `--port-driver` of the running RootlessKit; null when none runs or it has none. */
  portDriver: PortDriver | null;
  /** It runs with `--ipv6` (the last `--ipv6[=bool]` wins, as RootlessKit parses it). */
  ipv6: boolean;
  /** The last `--mtu` on its command line; null when none. */
  mtu: number | null;
  /** It runs with `--detach-netns`. */
  detachNetns: boolean;
  /** It runs with `--disable-host-loopback`. */
  disableHostLoopback: boolean;
  /** `--slirp4netns-sandbox` / `--slirp4netns-seccomp` as given; null = not on the command line (RootlessKit's default "false"). */
  slirp4netnsSandbox: string | null;
  /** `--slirp4netns-seccomp` as given; null = not on the command line. */
  slirp4netnsSeccomp: string | null;
  /** The flags beyond what dockerd-rootless.sh passes itself and beyond the typed inputs: what `extraFlags` gave. */
  extraFlags: string[];
}

export const NO_DAEMON: RunningNetwork = { networkDriver: null, portDriver: null, ipv6: false, mtu: null, detachNetns: false, disableHostLoopback: false, slirp4netnsSandbox: null, slirp4netnsSeccomp: null, extraFlags: [] };

/** The knobs a command line puts in force; `extraFlags` are the flags `isExtra` says are not the script's own. */
export function networkOf(parsed: ParsedArgv, isExtra: (flag: ParsedFlag) => boolean): RunningNetwork {
  const net = flagValue(parsed, "net");
  const port = flagValue(parsed, "port-driver");
  const mtu = Number(flagValue(parsed, "mtu"));
  return {
    networkDriver: (NETWORK_DRIVERS as readonly string[]).includes(net ?? "") ? (net as NetworkDriver) : null,
    portDriver: (PORT_DRIVERS as readonly string[]).includes(port ?? "") ? (port as PortDriver) : null,
    ipv6: flagValue(parsed, "ipv6") === "true",
    mtu: Number.isInteger(mtu) && mtu > 0 ? mtu : null,
    detachNetns: flagValue(parsed, "detach-netns") === "true",
    disableHostLoopback: flagValue(parsed, "disable-host-loopback") === "true",
    slirp4netnsSandbox: flagValue(parsed, "slirp4netns-sandbox") ?? null,
    slirp4netnsSeccomp: flagValue(parsed, "slirp4netns-seccomp") ?? null,
    extraFlags: parsed.flags.filter(isExtra).map(flagWord),
  };
}
