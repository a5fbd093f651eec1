import { isRootlessDockerError } from "../provider/errors/base";
import {
  blockTarget, breakDocker, clearLinkImpairment, fixDocker, hostExec, hostVersions, labDown, labPrepare, labStatus, labUp, setLinkImpairment,
  startSshd, stopSshd, unblockTarget, upgradeRootlessKit, installRootlessScriptOn, installMobyDockerdOn,
  type LabUpOptions,
} from "./api";
import { LabError } from "./lab-error";
import { assertPrerequisites } from "./prerequisites";
import { PROFILES, type Profile } from "./rootfs";

const USAGE = `usage: npm run lab -- <verb>
  up [--hosts N] [--profile trixie|bookworm|forky[,…]] [--rootlesskit VERSION] [--no-docker] [--ping-group-range open|closed]
      (N hosts of each profile; several \`up\` add to the same lab; --rootlesskit builds 2.x/3.x from the Go module proxy)
  status [--json]                              (--json: with the versions each host runs, read from the host)
  prepare [--profile P[,…]|all] [--rootlesskit V[,…]] [--moby V[,…]]
      (build root file systems and RootlessKit releases; fetch dockerd-rootless.sh and build dockerd of github.com/moby/moby/v2@V; boot nothing)
  install-rootless-script HOST VERSION         (the unit runs moby's dockerd-rootless.sh of that version from its next start)
  install-moby-dockerd HOST VERSION            (and moby's own dockerd and docker-proxy of that version: Docker 29.5+)
  upgrade-rootlesskit HOST VERSION             (swap the binary on a running host; the daemon keeps the old one until restarted)
  down
  fault sshd-stop|sshd-start|docker-break|docker-fix|target-block|target-unblock HOST
      (target-block: the lab's IPv6 target unreachable from HOST, so its verification fails)
  fault netem HOST [--delay MS] [--loss PCT]   (delay needs the netem qdisc; loss falls back to nftables)
  fault netem-clear HOST
  exec HOST -- CMD
The instance is named by RDL_LAB (default "lab").`;

function usageError(problem: string): LabError {
  return new LabError(problem, USAGE, { host: "cli", step: "parse arguments" });
}

/** Reads `--name value` flags; every flag must be known. */
function flags(args: string[], known: Record<string, "value" | "switch">): Map<string, string> {
  const found = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const name = args[i].replace(/^--/, "");
    if (!args[i].startsWith("--") || !(name in known)) throw usageError(`unexpected argument "${args[i]}"`);
    if (known[name] === "switch") found.set(name, "true");
    else {
      const value = args[++i];
      if (value === undefined) throw usageError(`--${name} needs a value`);
      found.set(name, value);
    }
  }
  return found;
}

function numberFlag(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed < 0) throw usageError(`--${name} must be a non-negative number, got "${value}"`);
  return parsed;
}

function parseProfiles(list: string): Profile[] {
  const profiles = list.split(",");
  const unknown = profiles.find((profile) => !PROFILES.includes(profile as Profile));
  if (unknown !== undefined) throw usageError(`unknown profile "${unknown}"`);
  return profiles as Profile[];
}

async function up(args: string[]): Promise<void> {
  const given = flags(args, { hosts: "value", profile: "value", "no-docker": "switch", "ping-group-range": "value", rootlesskit: "value" });
  const profiles = parseProfiles(given.get("profile") ?? "trixie");
  const range = given.get("ping-group-range") ?? "open";
  if (range !== "open" && range !== "closed") throw usageError(`--ping-group-range must be open or closed, got "${range}"`);
  const options: LabUpOptions = {
    hosts: numberFlag(given.get("hosts"), "hosts") ?? 1,
    profile: profiles,
    docker: !given.has("no-docker"),
    pingGroupRange: range,
    rootlesskit: given.get("rootlesskit"),
  };
  for (const host of await labUp(options)) process.stdout.write(`${host.name}\tssh -i ${host.privateKeyPath} ${host.user}@${host.address}\n`);
}

async function status(args: string[]): Promise<void> {
  const json = flags(args, { json: "switch" }).has("json");
  const hosts = labStatus();
  if (json) {
    const withVersions = await Promise.all(hosts.map(async (host) => ({ ...host, versions: await hostVersions(host.name) })));
    process.stdout.write(`${JSON.stringify(withVersions, null, 2)}\n`);
    return;
  }
  for (const host of hosts) {
    const rootlesskit = host.rootlesskitBuild ? `\trootlesskit=${host.rootlesskitBuild} (built)` : "";
    process.stdout.write(`${host.name}\t${host.profile}\t${host.address}\tdocker=${host.docker}\tping_group_range=${host.pingGroupRange}${rootlesskit}\n`);
  }
}

async function fault(args: string[]): Promise<void> {
  const [kind, host, ...rest] = args;
  if (host === undefined) throw usageError("fault needs a kind and a HOST");
  const simple: Record<string, (name: string) => Promise<void>> = {
    "sshd-stop": stopSshd,
    "sshd-start": startSshd,
    "docker-break": breakDocker,
    "docker-fix": fixDocker,
    "netem-clear": clearLinkImpairment,
    "target-block": blockTarget,
    "target-unblock": unblockTarget,
  };
  if (kind in simple) {
    flags(rest, {});
    return simple[kind](host);
  }
  if (kind !== "netem") throw usageError(`unknown fault "${kind}"`);
  const given = flags(rest, { delay: "value", loss: "value" });
  const impairment = { delayMs: numberFlag(given.get("delay"), "delay"), lossPercent: numberFlag(given.get("loss"), "loss") };
  if (impairment.delayMs === undefined && impairment.lossPercent === undefined) throw usageError("fault netem needs --delay MS and/or --loss PCT");
  return setLinkImpairment(host, impairment);
}

async function exec(args: string[]): Promise<number> {
  const [host, separator, ...command] = args;
  if (host === undefined || separator !== "--" || command.length === 0) throw usageError("exec needs HOST -- CMD");
  const result = await hostExec(host, command.join(" "));
  process.stdout.write(result.stdout);
  process.stderr.write(result.stderr);
  return result.exitCode;
}

async function main(argv: string[]): Promise<number> {
  const [verb, ...args] = argv;
  if (verb === undefined || verb === "help" || verb === "--help") {
    process.stdout.write(`${USAGE}\n`);
    return verb === undefined ? 2 : 0;
  }
  assertPrerequisites();
  switch (verb) {
    case "up":
      await up(args);
      return 0;
    case "status":
      await status(args);
      return 0;
    case "prepare": {
      const given = flags(args, { profile: "value", rootlesskit: "value", moby: "value" });
      const profiles = given.get("profile") === "all" ? [...PROFILES] : parseProfiles(given.get("profile") ?? "trixie");
      const list = (name: string) => (given.get(name) ?? "").split(",").filter(Boolean);
      await labPrepare(profiles, list("rootlesskit"), list("moby"));
      return 0;
    }
    case "upgrade-rootlesskit": {
      const [host, version, ...rest] = args;
      if (host === undefined || version === undefined) throw usageError("upgrade-rootlesskit needs HOST and VERSION");
      flags(rest, {});
      process.stdout.write(`${host}: rootlesskit ${await upgradeRootlessKit(host, version)}\n`);
      return 0;
    }
    case "install-rootless-script":
    case "install-moby-dockerd": {
      const [host, version, ...rest] = args;
      if (host === undefined || version === undefined) throw usageError(`${verb} needs HOST and VERSION`);
      flags(rest, {});
      const path = verb === "install-moby-dockerd" ? await installMobyDockerdOn(host, version) : await installRootlessScriptOn(host, version);
      process.stdout.write(`${host}: ${path} is moby's ${version}\n`);
      return 0;
    }
    case "down":
      flags(args, {});
      await labDown();
      return 0;
    case "fault":
      await fault(args);
      return 0;
    case "exec":
      return exec(args);
    default:
      throw usageError(`unknown verb "${verb}"`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`${isRootlessDockerError(error) ? error.message : error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  },
);
