/**
 * The running level of a plan and what the host's own dockerd-rootless.sh makes of the declared inputs: RootlessKit's
 * command line now against the one the script builds at the next start, flag by flag (in-effect.ts), and the inputs
 * that script would not start RootlessKit with. Pure.
 */
import { expectedCommandLine, flagsValue, KNOBS, knobFlags, knobValue, runningCommandLine, type CommandLine } from "./in-effect";
import { describeScript, type Invocation, type ScriptModel } from "./rootless-script";
import { MANAGED_PREFIX } from "./schema";
import { describeSource, environmentModel } from "./sources";
import type { CapabilityProblem, HostFacts, NetworkSpec, PropertyChange } from "./types";

export const FLAGS = `${MANAGED_PREFIX}FLAGS`;

/** The value a variable must have; FLAGS is always declared ("" = no flags). */
export function declaredValue(desired: Record<string, string>, name: string): string | undefined {
  return desired[name] ?? (name === FLAGS ? "" : undefined);
}

/** Equal for the script: FLAGS unset and FLAGS empty (or blank) both mean no flags. */
export function sameValue(name: string, a: string | undefined, b: string | undefined): boolean {
  if (name === FLAGS) return (a ?? "").trim().split(/\s+/).join(" ") === (b ?? "").trim().split(/\s+/).join(" ");
  return a === b;
}

/** The inputs whose flag the host's script would not start RootlessKit with: a variable it does not read, a default it adds, its FLAGS rewrite. */
export function scriptProblems(spec: NetworkSpec, facts: HostFacts, script: ScriptModel, desired: Record<string, string>, after: (name: string) => string | undefined): CapabilityProblem[] {
  const problems: CapabilityProblem[] = [];
  const what = describeScript(script, facts.versions.dockerd);
  if (!script.known) {
    problems.push({
      severity: "warning",
      message: `the script the unit's ExecStart runs (${facts.execStart.path ?? "no path"}) could not be read: the plan takes each variable for the RootlessKit flag it names, and cannot tell the script's own defaults`,
      hint: `check ExecStart: systemctl --user show -p ExecStart ${spec.unit}`,
    });
  }
  if (spec.networkDriver === "slirp4netns" && spec.ipv6 && script.ipv6Forwarding !== null) {
    // Seen on a forky lab host with moby v2.0.0-beta.24's script and dockerd: tap0 got no global IPv6 address.
    problems.push({
      severity: "error",
      message: `${what} turns on IPv6 forwarding in the RootlessKit namespace itself (${script.ipv6Forwarding}): with forwarding on, the kernel ignores slirp4netns's router advertisements, so the namespace gets no IPv6 address and ipv6 cannot work; nothing was written`,
      hint: `use networkDriver "pasta" (RootlessKit configures its IPv6 address itself)`,
    });
  }
  const { line: next, invocation } = expectedCommandLine(facts, script, (suffix) => after(`${MANAGED_PREFIX}${suffix}`));
  if (invocation.refused !== null) problems.push({ severity: "error", message: `${what}: ${invocation.refused}, so the daemon would not start; nothing was written`, hint: "set detachNetns to true or false" });
  const declared: [string, string, string, string | undefined][] = [
    ["net", "NET", "networkDriver", spec.networkDriver],
    ["port-driver", "PORT_DRIVER", "portDriver", spec.portDriver],
    ["mtu", "MTU", "mtu", String(spec.mtu)],
    ["ipv6", "FLAGS", "ipv6", String(spec.ipv6)],
    ["detach-netns", "DETACH_NETNS", "detachNetns", spec.detachNetns === undefined ? undefined : String(spec.detachNetns)],
    ["disable-host-loopback", "DISABLE_HOST_LOOPBACK", "disableHostLoopback", spec.disableHostLoopback === undefined ? undefined : String(spec.disableHostLoopback)],
    ["slirp4netns-sandbox", "SLIRP4NETNS_SANDBOX", "slirp4netnsSandbox", spec.slirp4netnsSandbox],
    ["slirp4netns-seccomp", "SLIRP4NETNS_SECCOMP", "slirp4netnsSeccomp", spec.slirp4netnsSeccomp],
  ];
  for (const [flag, variable, input, value] of declared) {
    // A variable another source decides is the effective level's error already.
    const name = `${MANAGED_PREFIX}${variable}`;
    if (value === undefined || invocation.unknown.has(flag) || !sameValue(name, after(name), declaredValue(desired, name))) continue;
    const will = knobOf(next, flag);
    if (will === value) continue;
    const runs = ["true", "false"].includes(will) ? (will === "true" ? `with --${flag}` : `without --${flag}`) : `with --${flag}=${will}`;
    if (!script.reads.has(variable)) {
      problems.push({
        severity: "error",
        message: `${what} does not read ${MANAGED_PREFIX}${variable}: ${input}: ${value} would not take effect (RootlessKit would run ${runs}); nothing was written`,
        hint:
          variable === "DETACH_NETNS"
            ? `use extraFlags: ["--detach-netns"] instead (this script passes ${MANAGED_PREFIX}FLAGS to RootlessKit; DETACH_NETNS is read by the script of Docker 29.5 and later), or leave detachNetns unset`
            : `leave ${input} unset on this host, or upgrade Docker to one whose dockerd-rootless.sh reads ${MANAGED_PREFIX}${variable}`,
      });
      continue;
    }
    const why = next.fromFlags(flag) ? `: a later --${flag} in ${MANAGED_PREFIX}FLAGS wins` : invocation.defaulted.has(variable) ? `: ${invocation.defaulted.get(variable)}` : "";
    problems.push({ severity: "error", message: `${what} would start RootlessKit ${runs} although ${input} is ${value}${why}; nothing was written`, hint: `remove --${flag} from what sets ${MANAGED_PREFIX}FLAGS` });
  }
  return problems;
}

/** RootlessKit's value of a knob that is not on its command line (cmd/rootlesskit/main.go; MTU 0 = the driver's default). */
const ROOTLESSKIT_DEFAULTS: Record<string, string> = { net: "host", "port-driver": "none", mtu: "0", ipv6: "false", "detach-netns": "false", "disable-host-loopback": "false", "slirp4netns-sandbox": "false", "slirp4netns-seccomp": "false" };

function knobOf(line: CommandLine, flag: string): string {
  return knobValue(line, flag) ?? ROOTLESSKIT_DEFAULTS[flag];
}

/** Extra flags compared as RootlessKit takes them: their order only matters for a repeated flag, which the parse resolved. */
function sameFlags(a: string, b: string): boolean {
  const words = (text: string) => text.split(" ").filter(Boolean).sort().join(" ");
  return words(a) === words(b);
}

/**
 * The running level: flag by flag, what RootlessKit runs with against what the host's script starts it with once our
 * file is in place and reloaded (`after`: each variable's value then).
 */
export function runningChanges(facts: HostFacts, model: ScriptModel, after: (name: string) => string | undefined): PropertyChange[] {
  if (facts.unit.activeState !== "active" || facts.unit.execMainPID <= 0) {
    return [{ level: "running", property: "daemon", desired: "active", actual: facts.unit.activeState || "inactive", cause: "daemon not running: a restart is needed" }];
  }
  const running = runningCommandLine(facts, model);
  if (running === null) {
    return [{ level: "running", property: "daemon", desired: "rootlesskit", actual: `no RootlessKit process under MainPID ${facts.unit.execMainPID}`, cause: "the running flags cannot be read: a restart is needed" }];
  }
  const { line: next, invocation } = expectedCommandLine(facts, model, (suffix) => after(`${MANAGED_PREFIX}${suffix}`));
  const changes: PropertyChange[] = [];
  const knobs = knobFlags(model);
  for (const knob of KNOBS) {
    if (knob.flag === "ipv6" || !knobs.has(knob.flag) || invocation.unknown.has(knob.flag)) continue;
    const [want, have] = [knobOf(next, knob.flag), knobOf(running, knob.flag)];
    if (want !== have) changes.push({ level: "running", property: `${MANAGED_PREFIX}${knob.variable}`, desired: want, actual: have, cause: runningCause(facts, knob.flag, knob.variable, running, next, invocation) });
  }
  const [wantFlags, haveFlags] = invocation.unknown.has("*") ? [String(next.network.ipv6), String(running.network.ipv6)] : [flagsValue(next.network), flagsValue(running.network)];
  if (!sameFlags(wantFlags, haveFlags)) {
    const [desired, actual] = invocation.unknown.has("*") ? [next.network.ipv6 ? "--ipv6" : undefined, running.network.ipv6 ? "--ipv6" : undefined] : [wantFlags || undefined, haveFlags || undefined];
    changes.push({ level: "running", property: FLAGS, ...(desired === undefined ? {} : { desired }), ...(actual === undefined ? {} : { actual }), cause: runningCause(facts, "ipv6", "FLAGS", running, next, invocation) });
  }
  return changes;
}

/** "pending restart", and what decides the running value and the next one when it is not the variable itself. */
function runningCause(facts: HostFacts, flag: string, variable: string, running: CommandLine, next: CommandLine, invocation: Invocation): string {
  const notes = ["pending restart"];
  if (flag !== "ipv6" && running.fromFlags(flag)) {
    const started = facts.running.environment[FLAGS];
    const decider = environmentModel(facts, facts.unitFiles).decisions.get(FLAGS);
    const source = decider !== undefined && decider.value === started ? `, set by ${describeSource(decider)}` : "";
    notes.push(`RootlessKit runs --${flag}=${knobOf(running, flag)}: the last --${flag} on its command line, from the ${FLAGS} it was started with ("${started ?? ""}"${source}), after the script's own --${flag}`);
  }
  const defaulted = invocation.defaulted.get(variable) ?? (variable === "FLAGS" ? invocation.defaulted.get("DETACH_NETNS") : undefined);
  if (defaulted !== undefined) notes.push(`the next start gets ${defaulted}`);
  if (flag !== "ipv6" && next.fromFlags(flag)) notes.push(`the next start takes --${flag} from ${FLAGS}`);
  return notes.join("; ");
}
