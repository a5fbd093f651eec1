/**
 * The running level, flag by flag: the RootlessKit command line the host's own dockerd-rootless.sh builds from the
 * environment the next start gets, against the one RootlessKit runs with — both parsed as RootlessKit parses them
 * (running.ts), never compared as environment strings (Docker 29.5's script rewrites FLAGS to
 * `--detach-netns $FLAGS`, 28.5.2's chooses the MTU and port driver itself). Pure.
 */
import { flagValue, flagWord, networkOf, NO_DAEMON, parseRootlessKitArgv, type ParsedArgv, type ParsedFlag, type RunningNetwork } from "./running";
import { scriptInvocation, scriptModel, type Invocation, type ScriptModel } from "./rootless-script";
import type { HostFacts } from "./types";

const PREFIX = "DOCKERD_ROOTLESS_ROOTLESSKIT_";

/** The RootlessKit flags an input decides, and the variable that carries it. */
export const KNOBS = [
  { flag: "net", variable: "NET" },
  { flag: "port-driver", variable: "PORT_DRIVER" },
  { flag: "mtu", variable: "MTU" },
  { flag: "ipv6", variable: "FLAGS" },
  { flag: "detach-netns", variable: "DETACH_NETNS" },
  { flag: "disable-host-loopback", variable: "DISABLE_HOST_LOOPBACK" },
  { flag: "slirp4netns-sandbox", variable: "SLIRP4NETNS_SANDBOX" },
  { flag: "slirp4netns-seccomp", variable: "SLIRP4NETNS_SECCOMP" },
] as const;

/** The script's own state directory: not an input, never compared. */
const NOT_COMPARED = new Set(["state-dir"]);

export interface CommandLine {
  parsed: ParsedArgv;
  network: RunningNetwork;
  /** Where each flag's deciding (last) occurrence came from: the script's own words or FLAGS. */
  fromFlags: (flag: string) => boolean;
}

/** The script of the unit's ExecStart, as the facts read it. */
export function hostScript(facts: HostFacts): ScriptModel {
  return scriptModel(facts.execStart.path, facts.execStart.script);
}

/**
 * A flag is a knob (an input's own) when the script reads its variable; otherwise (`--detach-netns` before Docker
 * 29.5) it can only come through FLAGS and is one of `extraFlags`. The script's own other words are neither.
 */
export function knobFlags(model: ScriptModel): Set<string> {
  return new Set(KNOBS.filter((knob) => model.reads.has(knob.variable)).map((knob) => knob.flag));
}

function extraJudge(model: ScriptModel, own: readonly string[]): (flag: ParsedFlag) => boolean {
  const knobs = knobFlags(model);
  const ownWords = new Set(parseRootlessKitArgv(own).flags.map(flagWord));
  return (flag) => !knobs.has(flag.name) && !NOT_COMPARED.has(flag.name) && !ownWords.has(flagWord(flag));
}

/** What the script will start RootlessKit with when the unit's processes get `env` (a variable's value by suffix). */
export function expectedCommandLine(facts: HostFacts, model: ScriptModel, env: (suffix: string) => string | undefined): { line: CommandLine; invocation: Invocation } {
  const invocation = scriptInvocation(model, env, facts);
  const words = [...invocation.own, ...invocation.flags, "$0"];
  const parsed = parseRootlessKitArgv(words);
  const flagsStart = invocation.own.length;
  return { line: { parsed, network: networkOf(parsed, extraJudge(model, invocation.own)), fromFlags: (flag) => lastIndex(words, flag) >= flagsStart }, invocation };
}

/** What RootlessKit runs with now (null = no RootlessKit process found). */
export function runningCommandLine(facts: HostFacts, model: ScriptModel): CommandLine | null {
  const argv = facts.running.rootlesskitArgv;
  if (argv === null) return null;
  const words = argv.slice(1);
  const parsed = parseRootlessKitArgv(words);
  // The script's own words as it built them from the environment the daemon was started with.
  const started = scriptInvocation(model, (suffix) => facts.running.environment[`${PREFIX}${suffix}`], facts);
  const flagWords = parsed.command.length > 0 ? words.length - parsed.command.length : words.length;
  const flagsCount = started.flags.length;
  return { parsed, network: networkOf(parsed, extraJudge(model, started.own)), fromFlags: (flag) => lastIndex(words.slice(0, flagWords), flag) >= flagWords - flagsCount };
}

function lastIndex(words: readonly string[], flag: string): number {
  for (let index = words.length - 1; index >= 0; index--) {
    if (words[index] === `--${flag}` || words[index].startsWith(`--${flag}=`) || words[index] === `-${flag}` || words[index].startsWith(`-${flag}=`)) return index;
  }
  return -1;
}

/** What the running daemon has in force (the outputs' `…InEffect`), with `extraFlags` judged against the host's own script. */
export function runningNetwork(facts: HostFacts): RunningNetwork {
  return runningCommandLine(facts, hostScript(facts))?.network ?? NO_DAEMON;
}

/** A knob's value for comparison and display; undefined = RootlessKit's default (not on the command line). */
export function knobValue(line: CommandLine, flag: string): string | undefined {
  return flagValue(line.parsed, flag);
}

/** The FLAGS knob: `--ipv6` and the extra flags, as one value ("" = none). */
export function flagsValue(network: RunningNetwork): string {
  return [...(network.ipv6 ? ["--ipv6"] : []), ...network.extraFlags].join(" ");
}
