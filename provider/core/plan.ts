/**
 * The pure comparison of a NetworkSpec with what one host has, on three levels: our drop-in file, the
 * environment systemd has loaded (effective), and the environment the running daemon was started with.
 */
import { createHash } from "node:crypto";
import { sameIpv6, targetFix } from "./address";
import { COMPAT_HELPER_MARKER, editDropIn, managedAssignments, ourExecStartPost, parseUnitFile } from "./dropin";
import { hostScript, KNOBS } from "./in-effect";
import { declaredValue, FLAGS, runningChanges, sameValue, scriptProblems } from "./running-level";
import { compareVersions } from "./versions";
import { desiredEnvironment, inputOfProperty, MANAGED_PREFIX, MANAGED_VARIABLES, type NetworkArgs } from "./schema";
import { compatHelperScript } from "./scripts";
import { describeSource, environmentModel, parseEnvironmentFile, unitLoad, type Decision, type EnvironmentModel } from "./sources";
import type { CapabilityProblem, FileWrite, HostFacts, HostPlan, NetworkDriver, NetworkSpec, PropertyChange, UnitFileOnDisk } from "./types";

const DROP_IN_MODE = 0o644;
const DAEMON_JSON_MODE = 0o644;
const COMPAT_HELPER_MODE = 0o755;
/** `%h` is the user's home in a user unit; `-` keeps a failing helper from failing the unit. */
const COMPAT_EXEC_START_POST = `-%h/.local/lib/${COMPAT_HELPER_MARKER}`;

/** First RootlessKit release that configures IPv6 for pasta itself (rootlesskit#458). */
const PASTA_IPV6_ROOTLESSKIT = "2.3.0";
const PASTA_ROOTLESSKIT = "2.0.0";
const GVISOR_ROOTLESSKIT = "3.0.0";
/** Docker 27 enabled ip6tables by default and took IPv6 out of experimental. */
const DOCKER_IPV6_STABLE = "27.0.0";

const DRIVER_BINARY: Partial<Record<NetworkDriver, keyof HostFacts["binaries"]>> = {
  pasta: "pasta",
  slirp4netns: "slirp4netns",
  vpnkit: "vpnkit",
  "lxc-user-nic": "lxc-user-nic",
};

/** The pasta IPv6 compat helper is really in place on the host: our ExecStartPost line and the script itself. */
export function compatHelperInstalled(facts: HostFacts): boolean {
  return ourExecStartPost(facts.dropIn.content) !== null && facts.compatScript.content !== null;
}

export { compareVersions };

const olderThan = (version: string | null, minimum: string) => version !== null && compareVersions(version, minimum) < 0;

/** pasta + IPv6 on a RootlessKit that starts pasta without IPv6, and the user asked for the helper. */
function compatNeeded(spec: NetworkSpec, facts: HostFacts): boolean {
  return spec.networkDriver === "pasta" && spec.ipv6 && olderThan(facts.versions.rootlesskit, PASTA_IPV6_ROOTLESSKIT);
}

export function planHost(spec: NetworkSpec, facts: HostFacts): HostPlan {
  const problems = capabilityProblems(spec, facts);
  const script = hostScript(facts);
  const compatInUse = compatNeeded(spec, facts) && spec.pastaIpv6Compat;
  const wantedExec = compatInUse ? COMPAT_EXEC_START_POST : null;
  const desired = declaredEnvironment(spec, facts, wantedExec);
  const changes: PropertyChange[] = [];
  const writes: FileWrite[] = [];

  // File level: our drop-in.
  const current = managedAssignments(facts.dropIn.content);
  changes.push(...environmentChanges("file", desired, current, () => undefined));
  const currentExec = ourExecStartPost(facts.dropIn.content);
  const newDropIn = editDropIn(facts.dropIn.content, desired, wantedExec);
  const execLineChanged = currentExec !== wantedExec;
  if (execLineChanged) changes.push(withoutUndefined({ level: "file" as const, property: "ExecStartPost", desired: wantedExec ?? undefined, actual: currentExec ?? undefined }));
  if (newDropIn !== facts.dropIn.content) writes.push({ path: facts.dropIn.path, content: newDropIn, mode: DROP_IN_MODE });

  // Effective level: who decides each variable once our file is in place and systemd has reloaded (every file
  // on disk, not only those the last reload loaded), against what systemd has loaded now.
  const afterFiles = withOurDropIn(facts, newDropIn);
  const model = environmentModel(facts, afterFiles);
  problems.push(...sourceProblems(spec, facts, afterFiles, model));
  const decision = (name: string) => model.decisions.get(name);
  problems.push(...scriptProblems(spec, facts, script, desired, (name) => decision(name)?.value));
  // dockerd-rootless.sh passes --disable-host-loopback unless the variable is exactly "false".
  problems.push(...targetProblems(spec, facts, decision(`${MANAGED_PREFIX}DISABLE_HOST_LOOPBACK`)?.value === "false"));
  for (const name of managedNames(desired, facts.unit.environment, Object.fromEntries([...model.decisions].map(([key, entry]) => [key, entry.value])))) {
    const declared = declaredValue(desired, name);
    if (declared === undefined) continue; // not ours to judge: it stays whatever the unit's other sources make it
    const decider = decision(name);
    if (!sameValue(name, decider?.value, declared)) {
      changes.push(withoutUndefined({ level: "effective" as const, property: name, desired: declared, actual: decider?.value ?? facts.unit.environment[name], cause: decider ? causeOf(facts, decider) : undefined }));
      problems.push(overriderProblem(facts, name, declared, decider));
      continue;
    }
    const loaded = facts.unit.environment[name];
    if (decider?.kind === "unit-file" && !sameValue(name, loaded, declared)) {
      const cause = writes.length > 0 ? "our drop-in does not say so yet" : facts.unit.needDaemonReload ? "written but not reloaded (NeedDaemonReload=yes)" : "the next daemon-reload changes it";
      changes.push(withoutUndefined({ level: "effective" as const, property: name, desired: declared, actual: loaded, cause }));
    }
  }

  // Containers' IPv6 (daemon.json) and the compat helper.
  const daemonJson = spec.containerIpv6 ? planDaemonJson(spec, facts, problems) : null;
  if (daemonJson) {
    changes.push(...daemonJson.changes);
    if (daemonJson.content !== null) writes.push({ path: facts.daemonJson.path, content: daemonJson.content, mode: DAEMON_JSON_MODE });
  }
  const helper = compatInUse ? compatHelperScript() : null;
  if (helper !== facts.compatScript.content) {
    writes.push({ path: facts.compatScript.path, content: helper, mode: COMPAT_HELPER_MODE });
    changes.push(
      withoutUndefined({
        level: "file" as const,
        property: "pastaIpv6Compat helper",
        desired: helper === null ? undefined : facts.compatScript.path,
        actual: facts.compatScript.content === null ? undefined : facts.compatScript.path,
      }),
    );
  }

  // Running level: what the daemon was started with, against what it gets at its next start after our write.
  const after = (name: string) => decision(name)?.value;
  const running = runningChanges(facts, script, after);
  changes.push(...running);

  // A daemon that is not active shows as the running change "daemon", so it is among the reasons too.
  const restartReasons = [
    ...running.map(runningReason),
    ...(execLineChanged ? ["the pastaIpv6Compat helper's ExecStartPost= line changes: it runs only when the daemon starts"] : []),
    ...writes.filter((write) => write.path !== facts.dropIn.path).map((write) => startOnlyReason(facts, write)),
  ];
  const needsRestart = restartReasons.length > 0;
  const restart = needsRestart && spec.restart !== "never";
  if (needsRestart && spec.restart === "never") {
    problems.push({ severity: "warning", message: `the running daemon does not have the desired settings and restart is "never"`, hint: `restart it yourself when convenient: systemctl --user restart ${spec.unit}` });
  }
  const dropInWritten = writes.some((write) => write.path === facts.dropIn.path);
  const daemonReload = dropInWritten || facts.unit.needDaemonReload;
  return {
    changes,
    problems,
    writes,
    daemonReload,
    restart,
    compatInUse,
    differs: changes.length > 0 || writes.length > 0 || daemonReload || restart,
    daemonReloadReason: reloadReason(facts, dropInWritten),
    restartReason: needsRestart
      ? `${restartReasons.join("; ")}${restart ? "" : `; restart is "never", so it stays pending`}`
      : writes.length > 0 || daemonReload
        ? "file written but the running daemon already matches: no restart"
        : "the running daemon already has the declared settings: no restart",
  };
}

/** Why systemd must reload (or need not): it reads unit files and drop-ins only then. */
function reloadReason(facts: HostFacts, dropInWritten: boolean): string {
  if (dropInWritten) return `${facts.dropIn.path} changes: systemd reads drop-ins only at daemon-reload`;
  if (facts.unit.needDaemonReload) return "a unit file changed on disk since the last daemon-reload (NeedDaemonReload=yes)";
  return "no unit file changes: no daemon-reload";
}

/**
 * A running-level change as the reason of a restart, as RootlessKit runs it: "networkDriver
 * (DOCKERD_ROOTLESS_ROOTLESSKIT_NET): running --net=slirp4netns, declared pasta".
 */
function runningReason(change: PropertyChange): string {
  if (change.property === "daemon") return `the daemon is not running as expected (${change.actual ?? "inactive"}): the apply starts it`;
  const input = inputOfProperty(change.property);
  const name = input === undefined ? change.property : `${input} (${change.property})`;
  const knob = KNOBS.find((entry) => `${MANAGED_PREFIX}${entry.variable}` === change.property && entry.flag !== "ipv6");
  const runs = knob === undefined ? `${change.actual ?? "no flags"}` : change.actual === undefined ? `without --${knob.flag}` : `--${knob.flag}=${change.actual}`;
  return `${name}: running ${runs}, declared ${change.desired ?? (knob === undefined ? "no flags" : "(unset)")}`;
}

/** A file the daemon reads only when it starts. */
function startOnlyReason(facts: HostFacts, write: FileWrite): string {
  if (write.path === facts.daemonJson.path) return `${write.path} changes (containerIpv6): dockerd reads it only when it starts`;
  return `the pastaIpv6Compat helper ${write.content === null ? "is removed" : "changes"}: it runs only when the daemon starts`;
}


/**
 * What our drop-in must set: the spec's variables, and FLAGS empty when the spec has no flags but another
 * source ours comes after (the unit file, an earlier drop-in, the manager) sets some: `ipv6: false` and no
 * `extraFlags` are declared too, never left to whatever else is there.
 */
function declaredEnvironment(spec: NetworkSpec, facts: HostFacts, wantedExec: string | null): Record<string, string> {
  const desired = desiredEnvironment(spec);
  if (desired[FLAGS] !== undefined) return desired;
  const model = environmentModel(facts, withOurDropIn(facts, editDropIn(facts.dropIn.content, desired, wantedExec)));
  const flags = model.decisions.get(FLAGS)?.value;
  // An environment.d file is the manager's environment after the next reload (which re-runs the environment
  // generators), even when `show-environment` does not list it yet: beat it now, not after the restart.
  const fromEnvironmentD = facts.environmentD.some((file) => parseEnvironmentFile(file.content).some((entry) => entry.name === FLAGS && entry.value.trim() !== ""));
  return (flags !== undefined && flags.trim() !== "") || fromEnvironmentD ? { ...desired, [FLAGS]: "" } : desired;
}

/** The files the next daemon-reload loads once our drop-in has `content` (null = removed). */
function withOurDropIn(facts: HostFacts, content: string | null): UnitFileOnDisk[] {
  const others = facts.unitFiles.filter((file) => file.path !== facts.dropIn.path);
  if (content === null) return others;
  const ours: UnitFileOnDisk = { kind: "dropin", path: facts.dropIn.path, content };
  const existing = facts.unitFiles.findIndex((file) => file.path === facts.dropIn.path);
  if (existing >= 0) return facts.unitFiles.map((file, index) => (index === existing ? ours : file));
  // In search-path order: before the first file of a lower-priority directory.
  const rank = (path: string) => facts.unitPath.findIndex((dir) => path.startsWith(`${dir}/`));
  const ourRank = rank(ours.path);
  const at = others.findIndex((file) => rank(file.path) > ourRank || rank(file.path) < 0);
  return at < 0 ? [...others, ours] : [...others.slice(0, at), ours, ...others.slice(at)];
}

/** Whether systemd loaded `path` at its last reload (the unit file, or one of DropInPaths). */
function loadedNow(facts: HostFacts, path: string): boolean {
  return path === facts.unit.fragmentPath || facts.unit.dropInPaths.includes(path);
}

/** The source that decides a variable, as the cause of a plan row (names the file and line). */
function causeOf(facts: HostFacts, decider: Decision): string {
  if (decider.kind === "unit-file" && decider.path !== null && facts.userManager && !loadedNow(facts, decider.path)) {
    return `${describeSource(decider)}, written after the last daemon-reload, ${decider.value === undefined ? "resets it" : "sets it"}: the next reload brings it`;
  }
  if (decider.kind === "unit-file") return `${decider.value === undefined ? "reset" : "overridden"} by ${describeSource(decider)}`;
  if (decider.kind === "environment-file") return `overridden by ${describeSource(decider)} (its variables beat Environment=)`;
  if (decider.kind === "unset") return `removed by ${describeSource(decider)}`;
  return `set by ${describeSource(decider)}`;
}

function overriderProblem(facts: HostFacts, name: string, declared: string, decider: Decision | undefined): CapabilityProblem {
  const wanted = `${name}=${declared}${declared === "" ? " (no flags)" : ""}`;
  if (decider === undefined) {
    return { severity: "error", message: `nothing sets ${name} once our drop-in ${facts.dropIn.path} is in place, so ${wanted} cannot take effect`, hint: `check the unit's other sources: systemctl --user cat ${facts.unit.fragmentPath || "the unit"}` };
  }
  const does = decider.value === undefined ? `unsets ${name}` : `sets ${name}=${decider.value}`;
  const source = describeSource(decider);
  if (decider.kind === "unit-file" && decider.path !== null && facts.userManager && !loadedNow(facts, decider.path)) {
    return {
      severity: "error",
      message: `${source} was written after the last daemon-reload and ${does}: the next daemon-reload (an apply's own, or anyone's) loads it, so ${wanted} cannot take effect; nothing was written`,
      hint: `remove ${name} from ${decider.path} (or the file), or choose a dropInName that sorts after it (e.g. "zz-pulumi-rootless-docker.conf")`,
    };
  }
  if (decider.kind === "environment-file") {
    return { severity: "error", message: `${source} ${does}, and an EnvironmentFile='s variables beat every Environment= line, so ${wanted} cannot take effect`, hint: `remove ${name} from ${decider.path}` };
  }
  if (decider.kind === "unset") {
    return { severity: "error", message: `${source} ${does}, so ${wanted} cannot take effect`, hint: `remove ${name} from that UnsetEnvironment= line` };
  }
  if (decider.kind === "manager") {
    return { severity: "error", message: `${source} ${does}, so ${wanted} cannot take effect`, hint: `systemctl --user unset-environment ${name}, and remove it from the environment.d file that sets it` };
  }
  return {
    severity: "error",
    message: `${source} ${does} after our drop-in ${facts.dropIn.path}, so ${wanted} cannot take effect`,
    hint: `remove ${name} from ${decider.path}, or choose a dropInName that sorts after it (e.g. "zz-pulumi-rootless-docker.conf")`,
  };
}

/**
 * What the unit's files themselves make wrong: a line the plan cannot read as systemd does, our drop-in masked
 * (or outside the manager's search path), a file ours masks (its settings stop applying), a missing EnvironmentFile=.
 */
function sourceProblems(spec: NetworkSpec, facts: HostFacts, files: readonly UnitFileOnDisk[], model: EnvironmentModel): CapabilityProblem[] {
  const problems: CapabilityProblem[] = [];
  for (const problem of model.problems) {
    problems.push({ severity: "error", message: `${problem.path}:${problem.line}: ${problem.message}`, hint: `fix that line; systemd reads it the same way (journalctl --user -b | grep ${problem.path.slice(problem.path.lastIndexOf("/") + 1)})` });
  }
  const load = unitLoad(files);
  for (const { file, by } of load.masked) {
    if (file.path === facts.dropIn.path) {
      problems.push({ severity: "error", message: `our drop-in ${facts.dropIn.path} is masked by ${by.path}, which has the same name in a directory systemd reads first: nothing we write there takes effect`, hint: `choose another dropInName, or remove ${by.path}` });
    } else if (by.path === facts.dropIn.path) {
      const settings = describeSettings(file.content);
      problems.push({
        severity: "warning",
        message: `our drop-in ${facts.dropIn.path} masks ${file.path} (same file name, and systemd reads only the one in the higher-priority directory)${settings === "" ? "" : `: what it sets stops applying: ${settings}`}`,
        hint: `move those settings to a file of another name in ${file.path.slice(0, file.path.lastIndexOf("/"))}, or choose another dropInName`,
      });
    }
  }
  if (facts.userManager && facts.unitPath.length > 0 && !facts.unitPath.some((dir) => facts.dropIn.path.startsWith(`${dir}/`))) {
    problems.push({ severity: "error", message: `${facts.dropIn.path} is not under the user manager's unit search path (${facts.unitPath.join(" ")}): systemd would never load it`, hint: `check XDG_CONFIG_HOME in the manager's environment (systemctl --user show-environment)` });
  }
  for (const missing of model.missingEnvironmentFiles) {
    problems.push({ severity: "warning", message: `${missing.unitFile}:${missing.line} requires EnvironmentFile=${missing.path}, which does not exist: ${spec.unit} will fail to start`, hint: `create ${missing.path}, or prefix the path with "-" to make it optional` });
  }
  return problems;
}

/** A unit file's settings, "[Service] Environment=…; LimitNOFILE=…", for a warning. */
function describeSettings(content: string | null): string {
  const bySection = new Map<string, string[]>();
  for (const line of parseUnitFile(content ?? "")) {
    if (line.kind !== "setting") continue;
    const section = line.section ?? "(no section)";
    bySection.set(section, [...(bySection.get(section) ?? []), `${line.key}=${line.value}`]);
  }
  return [...bySection].map(([section, settings]) => `[${section}] ${settings.join("; ")}`).join(" ");
}

/** The variables we own that either environment sets. */
function managedNames(...environments: Record<string, string | undefined>[]): string[] {
  return MANAGED_VARIABLES.filter((name) => environments.some((env) => env[name] !== undefined));
}

function environmentChanges(level: PropertyChange["level"], desired: Record<string, string>, actual: Record<string, string>, cause: (name: string) => string | undefined): PropertyChange[] {
  return managedNames(desired, actual)
    .filter((name) => desired[name] !== actual[name])
    .map((name) => withoutUndefined({ level, property: name, desired: desired[name], actual: actual[name], cause: cause(name) }));
}

/**
 * Verification targets that prove nothing on this host: one of its own addresses (the probe would reach the host, and
 * pasta gives the namespace the host's addresses), and with pasta mapping the host loopback the host's default gateway:
 * pasta's --map-host-loopback defaults to the gateway, and RootlessKit passes --no-map-gw only with
 * --disable-host-loopback (pkg/network/pasta), so the probe would reach the host itself, not the gateway.
 */
export function targetProblems(spec: NetworkSpec, facts: HostFacts, hostLoopbackMapped: boolean): CapabilityProblem[] {
  if (!spec.verify.enabled) return [];
  return spec.verify.targets.flatMap((target, index): CapabilityProblem[] => {
    const property = `verify.targets[${index}].address`;
    if (facts.hostIpv6.addresses.some((own) => sameIpv6(own, target.address))) {
      return [{ severity: "error", message: `${property} ${target.address} is one of the host's own addresses: an answer from it proves nothing about the network`, hint: targetFix(property) }];
    }
    if (spec.networkDriver === "pasta" && hostLoopbackMapped && facts.hostIpv6.defaultGateways.some((gateway) => sameIpv6(gateway, target.address))) {
      return [
        {
          severity: "error",
          message: `${property} ${target.address} is the host's IPv6 default gateway, which pasta maps to the host itself while disableHostLoopback is false: the probe would reach the host, not the gateway`,
          hint: `${targetFix(property)}; or set disableHostLoopback: true (RootlessKit then starts pasta with --no-map-gw)`,
        },
      ];
    }
    return [];
  });
}

/** How to provide the verification's container image. */
export function probeImageHint(image: string): string {
  return `as the user, docker pull ${image} (or docker load one), or set verify.image to a local image that has sh, ip, ping and nc`;
}

function capabilityProblems(spec: NetworkSpec, facts: HostFacts): CapabilityProblem[] {
  const problems: CapabilityProblem[] = [];
  const error = (message: string, hint: string) => problems.push({ severity: "error", message, hint });
  const warning = (message: string, hint: string) => problems.push({ severity: "warning", message, hint });
  const rootlesskit = facts.versions.rootlesskit;

  if (facts.uid === 0) {
    error(`connected as root (${facts.user}): rootless Docker runs as a non-root user`, "set connection.user to the user that runs rootless Docker");
  } else if (!facts.userManager) {
    error(`no systemd user manager answers for ${facts.user} (XDG_RUNTIME_DIR=${facts.xdgRuntimeDir || "unset"})`, `as root: loginctl enable-linger ${facts.user}; then check: systemctl --user status`);
  } else if (!facts.unit.loaded) {
    error(`the user unit ${spec.unit} is not loaded for ${facts.user}`, `install rootless Docker (dockerd-rootless-setuptool.sh install), or set unit to the right name`);
  }
  if (facts.probeImage?.present === false) {
    error(`verify.image "${facts.probeImage.image}" is not on the host: the bridge-container check cannot run (images are never pulled)`, probeImageHint(facts.probeImage.image));
  }
  if (!facts.linger) warning(`linger is off for ${facts.user}: the daemon stops when the last session ends`, `as root: loginctl enable-linger ${facts.user}`);

  if (facts.binaries.rootlesskit === null) error("rootlesskit is not installed (not found on the unit's PATH)", "install rootlesskit (Debian: apt-get install rootlesskit; docker-ce: docker-ce-rootless-extras)");
  const binary = DRIVER_BINARY[spec.networkDriver];
  if (binary && facts.binaries[binary] === null) {
    error(`networkDriver "${spec.networkDriver}" needs the ${binary} binary, which is not installed: the daemon would fail to start`, `install ${binary === "pasta" ? "passt" : binary}, or choose another networkDriver`);
  }
  if (facts.binaries.rootlesskit !== null && rootlesskit === null) warning("the rootlesskit version could not be read: version checks were skipped", "check that `rootlesskit --version` works for the user");

  if (spec.networkDriver === "pasta" && olderThan(rootlesskit, PASTA_ROOTLESSKIT)) {
    error(`rootlesskit ${rootlesskit} has no pasta network driver (nor the implicit port driver); needs ≥ ${PASTA_ROOTLESSKIT}`, `upgrade rootlesskit, or use networkDriver "slirp4netns" (ipv6 works there)`);
  } else if (compatNeeded(spec, facts)) {
    if (!spec.pastaIpv6Compat) {
      error(
        `rootlesskit ${rootlesskit} starts pasta without IPv6 (--no-ra, IPv4 only); pasta IPv6 needs rootlesskit ≥ ${PASTA_IPV6_ROOTLESSKIT}`,
        `set pastaIpv6Compat: true (an ExecStartPost= helper gives the namespace IPv6), or upgrade rootlesskit, or use networkDriver "slirp4netns"`,
      );
    } else if (facts.binaries.nsenter === null) {
      error("the pastaIpv6Compat helper needs nsenter, which is not installed", "install util-linux (nsenter), or upgrade rootlesskit to ≥ 2.3.0 and drop pastaIpv6Compat");
    }
  }
  // Validation limits pastaIpv6Compat to pasta + IPv6, so here the version made it unneeded. Kept on purpose across a
  // fleet (some hosts still old), it must say why nothing is installed on this one.
  if (spec.pastaIpv6Compat && rootlesskit !== null && !compatNeeded(spec, facts)) {
    warning(
      `pastaIpv6Compat installs nothing on this host: rootlesskit ${rootlesskit} gives pasta IPv6 itself (≥ ${PASTA_IPV6_ROOTLESSKIT})`,
      `nothing to do; remove pastaIpv6Compat once no host runs rootlesskit < ${PASTA_IPV6_ROOTLESSKIT}`,
    );
  }
  if (spec.networkDriver === "gvisor-tap-vsock" && olderThan(rootlesskit, GVISOR_ROOTLESSKIT)) {
    error(`rootlesskit ${rootlesskit} has no gvisor-tap-vsock network driver; needs ≥ ${GVISOR_ROOTLESSKIT}`, `upgrade rootlesskit, or use networkDriver "slirp4netns" or "pasta"`);
  }
  if (spec.detachNetns === true && olderThan(rootlesskit, PASTA_ROOTLESSKIT)) {
    error(`rootlesskit ${rootlesskit} has no --detach-netns; needs ≥ ${PASTA_ROOTLESSKIT}`, "upgrade rootlesskit, or leave detachNetns unset");
  }

  // Contents travel as UTF-8 text: a file that is not valid UTF-8 could not be edited byte for byte.
  for (const file of [facts.dropIn, facts.daemonJson, facts.compatScript]) {
    if (file.content?.includes("\uFFFD")) error(`${file.path} is not valid UTF-8, so it cannot be edited byte for byte`, `convert it to UTF-8 (iconv -t UTF-8), then apply again`);
  }
  if (spec.verify.enabled && facts.binaries.nsenter === null && !(compatNeeded(spec, facts) && spec.pastaIpv6Compat)) {
    warning("verification enters the RootlessKit namespace with nsenter, which is not installed: it cannot see the namespace", "install util-linux (nsenter), or set verify.enabled: false");
  }
  if (spec.networkDriver === "slirp4netns" && spec.ipv6) {
    // dockerd turns on IPv6 forwarding in the namespace when daemon IPv6 is on; with forwarding on, the kernel
    // ignores slirp4netns's router advertisements and the namespace loses its IPv6 default route (seen in the lab).
    const forwarding = "dockerd's IPv6 forwarding makes the namespace ignore slirp4netns's router advertisements, so it loses its IPv6 default route";
    if (spec.containerIpv6 !== undefined) error(`containerIpv6 with networkDriver "slirp4netns": ${forwarding}`, `use networkDriver "pasta" (with pastaIpv6Compat: true on rootlesskit < ${PASTA_IPV6_ROOTLESSKIT}), or drop containerIpv6`);
    else if (daemonIpv6On(facts)) warning(`${facts.daemonJson.path} has "ipv6": true: ${forwarding}`, `use networkDriver "pasta", or remove "ipv6" from ${facts.daemonJson.path}`);
  }

  const range = facts.pingGroupRange;
  const icmpChecked = spec.verify.enabled && spec.verify.targets.some((target) => target.icmp);
  if (icmpChecked && range !== null && !(range[0] <= facts.uid && facts.uid <= range[1])) {
    warning(
      `net.ipv4.ping_group_range is "${range[0]} ${range[1]}", which does not include the user's group (assumed gid ${facts.uid}): ICMP checks will fail while TCP works`,
      `as root: sysctl -w net.ipv4.ping_group_range="0 2147483647" (and persist it in /etc/sysctl.d)`,
    );
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// daemon.json

function daemonIpv6On(facts: HostFacts): boolean {
  try {
    return (JSON.parse(facts.daemonJson.content ?? "{}") as { ipv6?: unknown }).ipv6 === true;
  } catch {
    return false;
  }
}

function planDaemonJson(spec: NetworkSpec, facts: HostFacts, problems: CapabilityProblem[]): { content: string | null; changes: PropertyChange[] } | null {
  let current: Record<string, unknown> = {};
  try {
    const parsed: unknown = JSON.parse(facts.daemonJson.content ?? "{}");
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new TypeError("not a JSON object");
    current = parsed as Record<string, unknown>;
  } catch (cause) {
    problems.push({ severity: "error", message: `${facts.daemonJson.path} is not a JSON object (${(cause as Error).message})`, hint: `fix or remove ${facts.daemonJson.path}, then apply again` });
    return null;
  }
  const managed = daemonJsonSettings(spec, facts);
  const changes = Object.entries(managed)
    .filter(([key, value]) => current[key] !== value)
    .map(([key, value]) => withoutUndefined({ level: "file" as const, property: `daemon.json ${key}`, desired: String(value), actual: current[key] === undefined ? undefined : JSON.stringify(current[key]) }));
  return { content: changes.length > 0 ? `${JSON.stringify({ ...current, ...managed }, null, 2)}\n` : null, changes };
}

function daemonJsonSettings(spec: NetworkSpec, facts: HostFacts): Record<string, string | boolean> {
  const settings: Record<string, string | boolean> = { ipv6: true, "fixed-cidr-v6": spec.containerIpv6?.fixedCidrV6 ?? derivedContainerPrefix(spec.connection.host) };
  // An unknown Docker version gets the old keys too: harmless on 27+, required before.
  const dockerd = facts.versions.dockerd;
  if (dockerd === null || compareVersions(dockerd, DOCKER_IPV6_STABLE) < 0) Object.assign(settings, { experimental: true, ip6tables: true });
  return settings;
}

/** A stable /64 ULA per host, fdXX:XXXX:XXXX:XXXX::/64 from sha256(host); never fd00::/64 (the namespace's). */
export function derivedContainerPrefix(host: string): string {
  const hex = createHash("sha256").update(host, "utf8").digest("hex");
  const groups = [`fd${hex.slice(0, 2)}`, hex.slice(2, 6), hex.slice(6, 10), hex.slice(10, 14)];
  if (groups.join("") === "fd00000000000000") groups[3] = "0001";
  return `${groups.map((group) => group.replace(/^0+(?=.)/, "")).join(":")}::/64`;
}

// ---------------------------------------------------------------------------------------------

/** Removes our settings (the file too when nothing else is in it) and the compat helper; restarts only if the daemon runs with our settings. */
export function planRemoval(spec: NetworkSpec, facts: HostFacts): HostPlan {
  const changes: PropertyChange[] = [];
  const writes: FileWrite[] = [];
  const ours = managedAssignments(facts.dropIn.content);
  const remaining = editDropIn(facts.dropIn.content, {}, null);
  if (remaining !== facts.dropIn.content) writes.push({ path: facts.dropIn.path, content: remaining, mode: DROP_IN_MODE });
  changes.push(...environmentChanges("file", {}, ours, () => "removed with the resource"));
  if (facts.compatScript.content !== null) {
    writes.push({ path: facts.compatScript.path, content: null, mode: COMPAT_HELPER_MODE });
    changes.push({ level: "file", property: "pastaIpv6Compat helper", actual: facts.compatScript.path, cause: "removed with the resource" });
  }
  const decisions = environmentModel(facts, facts.unitFiles).decisions;
  const runningOurs = Object.entries(ours).filter(([name, value]) => facts.running.environment[name] === value && decisions.get(name)?.path === facts.dropIn.path);
  const active = facts.unit.activeState === "active";
  changes.push(...runningOurs.map(([name, value]) => ({ level: "running" as const, property: name, actual: value, cause: "the running daemon has our setting" })));
  const daemonReload = writes.some((write) => write.path === facts.dropIn.path);
  const needsRestart = active && runningOurs.length > 0;
  const restart = needsRestart && spec.restart !== "never";
  const ourNames = runningOurs.map(([name]) => name.slice(MANAGED_PREFIX.length)).join(", ");
  return {
    changes,
    problems: [],
    writes,
    daemonReload,
    restart,
    compatInUse: false,
    differs: changes.length > 0 || writes.length > 0 || restart,
    daemonReloadReason: reloadReason({ ...facts, unit: { ...facts.unit, needDaemonReload: false } }, daemonReload),
    restartReason: needsRestart
      ? `the running daemon has our settings (${ourNames})${restart ? ": it restarts on what is left" : `; restart is "never", so they stay until its next start`}`
      : `the running daemon does not run with our settings: no restart`,
  };
}

/**
 * The public inputs as the host really has them (from the environment systemd has loaded, else our file),
 * keeping what the host cannot tell (connection, verify, unit, dropInName, restart) from the spec.
 */
export function observedInputs(spec: NetworkSpec, facts: HostFacts): NetworkArgs {
  const env = observedEnvironment(spec, facts);
  const get = (suffix: string): string | undefined => env[`${MANAGED_PREFIX}${suffix}`];
  const words = (get("FLAGS") ?? "").split(/\s+/).filter((word) => word !== "");
  const toBoolean = (value: string | undefined, truthy: string[]) => (value === undefined ? undefined : truthy.includes(value));
  const mtu = Number(get("MTU"));
  const observed = {
    connection: spec.connection,
    networkDriver: get("NET") as NetworkArgs["networkDriver"],
    portDriver: get("PORT_DRIVER") as NetworkArgs["portDriver"],
    ipv6: words.includes("--ipv6"),
    mtu: get("MTU") !== undefined && Number.isInteger(mtu) ? mtu : undefined,
    disableHostLoopback: toBoolean(get("DISABLE_HOST_LOOPBACK"), ["true", "1", ""]),
    detachNetns: toBoolean(get("DETACH_NETNS"), ["true", "1"]),
    slirp4netnsSandbox: get("SLIRP4NETNS_SANDBOX") as NetworkArgs["slirp4netnsSandbox"],
    slirp4netnsSeccomp: get("SLIRP4NETNS_SECCOMP") as NetworkArgs["slirp4netnsSeccomp"],
    extraFlags: words.filter((word) => word !== "--ipv6"),
    containerIpv6: spec.containerIpv6 ? observedContainerIpv6(spec, facts) : undefined,
    unit: spec.unit,
    dropInName: spec.dropInName,
    verify: spec.verify,
    restart: spec.restart,
    pastaIpv6Compat: ourExecStartPost(facts.dropIn.content) !== null || (spec.pastaIpv6Compat && !compatNeeded(spec, facts)),
  };
  return withoutUndefined(observed) as NetworkArgs;
}

/**
 * Per variable, the first level (file, effective, running) whose value differs from the desired one, so that a
 * hand edit not yet reloaded, an overriding drop-in and a pending restart each show as the value the host has.
 */
function observedEnvironment(spec: NetworkSpec, facts: HostFacts): Record<string, string> {
  const desired = desiredEnvironment(spec);
  const levels = [managedAssignments(facts.dropIn.content), pickManaged(facts.unit.environment)];
  // The running level as runningChanges judges it, flag by flag against what the host's script would start once our
  // file is in place: only a flag that differs shows, as the value RootlessKit runs with (so a host the plan calls in
  // sync reads back as the spec, and Docker 29.5's own `--detach-netns` never reads back as an extra flag).
  if (facts.running.rootlesskitArgv !== null && facts.unit.activeState === "active") {
    const decisions = environmentModel(facts, withOurDropIn(facts, editDropIn(facts.dropIn.content, declaredEnvironment(spec, facts, null), null))).decisions;
    const running: Record<string, string> = { ...desired };
    for (const change of runningChanges(facts, hostScript(facts), (name) => decisions.get(name)?.value)) {
      if (!change.property.startsWith(MANAGED_PREFIX)) continue;
      if (change.actual === undefined) delete running[change.property];
      else running[change.property] = change.actual;
    }
    levels.push(running);
  }
  const observed: Record<string, string> = {};
  for (const name of MANAGED_VARIABLES) {
    const drifted = levels.find((level) => level[name] !== desired[name]);
    const value = drifted ? drifted[name] : desired[name];
    if (value !== undefined) observed[name] = value;
  }
  return observed;
}

function pickManaged(env: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter(([name]) => MANAGED_VARIABLES.includes(name)));
}

function observedContainerIpv6(spec: NetworkSpec, facts: HostFacts): NetworkSpec["containerIpv6"] {
  let current: Record<string, unknown>;
  try {
    current = JSON.parse(facts.daemonJson.content ?? "{}") as Record<string, unknown>;
  } catch {
    return undefined;
  }
  const wanted = daemonJsonSettings(spec, facts);
  if (Object.entries(wanted).every(([key, value]) => current[key] === value)) return spec.containerIpv6;
  return current.ipv6 === true && typeof current["fixed-cidr-v6"] === "string" ? { fixedCidrV6: current["fixed-cidr-v6"] } : undefined;
}

/** Pulumi cannot encode `undefined`: leave such keys out. */
export function withoutUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, entry]) => entry !== undefined)) as T;
}
