/**
 * IPv6 reachability from inside the RootlessKit network namespace (and optionally a bridge container):
 * provider/remote/verify.sh with its parameters, and the pure interpretation of its output with a diagnosis a user can act on.
 */
import { remoteScript } from "./remote";
import { fromBase64 } from "./scripts";
import type { Diagnosis, NetworkSpec, PathResult, TargetResult, VerificationCoverage, VerificationResult, VerifySpec } from "./types";

export interface VerifyOptions {
  /** Also probe from a bridge container (`docker run --rm --pull=never IMAGE`). */
  container: boolean;
  /** The user unit running rootless Docker (default `docker.service`). */
  unit?: string;
}

/**
 * provider/remote/verify.sh with its parameters: the targets as `ADDRESS,PORT|-,1|0` words, the seconds each place
 * keeps retrying, the unit, the image and whether a bridge container is probed.
 */
export function verifyScript(verify: VerifySpec, options: VerifyOptions): string {
  return remoteScript("verify", {
    RDN_TARGETS: verify.targets.map((target) => `${target.address},${target.tcpPort ?? "-"},${target.icmp ? 1 : 0}`).join(" "),
    RDN_SECONDS: String(Math.max(1, Math.ceil(verify.timeoutSeconds))),
    RDN_UNIT: options.unit ?? "docker.service",
    RDN_IMAGE: verify.image,
    RDN_CONTAINER: options.container ? "1" : "0",
  });
}

// ---------------------------------------------------------------------------------------------
// parse

interface RawPath {
  path: "namespace" | "container";
  noDaemon: string | null;
  failed: string | null;
  /** The container image that is not on the host. */
  noImage: string | null;
  attempts: number;
  addresses: { address: string; tentative: boolean }[];
  route: string | null;
  pings: Map<string, { ok: boolean; rtt: number | null; reason: string }>;
  tcps: Map<string, boolean>;
}

interface RawVerification {
  checkedAt: string;
  /** Announced by the script; null in output of a script that did not announce it. */
  covers: VerificationCoverage | null;
  groups: number[];
  targets: VerifySpec["targets"];
  paths: RawPath[];
}

function readPaths(stdout: string): RawVerification {
  let checkedAt = "";
  let covers: VerificationCoverage | null = null;
  let groups: number[] = [];
  const targets: VerifySpec["targets"] = [];
  const paths: RawPath[] = [];
  const current = (): RawPath | undefined => paths[paths.length - 1];
  for (const line of stdout.split("\n")) {
    const [marker, key, ...fields] = line.trim().split(/\s+/);
    if (marker !== "RDN") continue;
    const path = current();
    switch (key) {
      case "checkedat":
        checkedAt = fields[0] ?? "";
        break;
      case "covers":
        if (fields[0] === "namespace" || fields[0] === "namespace+container") covers = fields[0];
        break;
      case "groups":
        groups = fields.map(Number).filter((gid) => Number.isInteger(gid));
        break;
      case "target":
        if (fields[0]) targets.push({ address: fields[0], ...(fields[1] !== "-" ? { tcpPort: Number(fields[1]) } : {}), icmp: fields[2] === "1" });
        break;
      case "path":
        if (fields[0] === "namespace" || fields[0] === "container") {
          paths.push({ path: fields[0], noDaemon: null, failed: null, noImage: null, attempts: 0, addresses: [], route: null, pings: new Map(), tcps: new Map() });
        }
        break;
      case "nodaemon":
        if (path) path.noDaemon = fromBase64(fields[0] ?? "");
        break;
      case "pathfailed":
        if (path) path.failed = fromBase64(fields[0] ?? "");
        break;
      case "noimage":
        if (path) path.noImage = fromBase64(fields[0] ?? "");
        break;
      case "attempt":
        // Only the last attempt counts: earlier ones ran while addresses and routes were settling.
        if (path) Object.assign(path, { attempts: Number(fields[0]) || path.attempts + 1, addresses: [], route: null, pings: new Map(), tcps: new Map() });
        break;
      case "addr":
        path?.addresses.push({ address: fields[0] ?? "", tentative: fields[1] === "tentative" });
        break;
      case "route":
        if (path) path.route = fields.join(" ");
        break;
      case "ping":
        if (path && fields[0]) {
          const rtt = Number(fields[2]);
          path.pings.set(fields[0], { ok: fields[1] === "ok", rtt: fields[1] === "ok" && Number.isFinite(rtt) ? rtt : null, reason: fields.slice(2).join(" ") });
        }
        break;
      case "tcp":
        if (path && fields[0]) path.tcps.set(`${fields[0]} ${fields[1]}`, fields[2] === "ok");
        break;
    }
  }
  return { checkedAt, covers, groups, targets, paths };
}

/** The kernel lets a process open ICMP ping sockets when any of its groups is inside net.ipv4.ping_group_range. */
function pingAllowed(range: [number, number] | null, groups: number[]): boolean | null {
  if (range === null || groups.length === 0) return null;
  return groups.some((gid) => gid >= range[0] && gid <= range[1]);
}

/** Each place a probe runs, in words. */
const PLACE: Record<PathResult["path"], string> = { namespace: "the RootlessKit network namespace", container: "a bridge container" };

/** A path nothing was learnt from: not reachable, with why. */
function unprobedPath(path: PathResult["path"], diagnosis: Diagnosis, detail: string): PathResult {
  return { path, reachable: false, diagnosis, detail, addresses: [], defaultRoute: null, targets: [] };
}

/** What a verification of `spec` probes: a bridge container only when daemon.json (containerIpv6) is managed. */
export function verificationCoverage(spec: Pick<NetworkSpec, "containerIpv6">): VerificationCoverage {
  return spec.containerIpv6 !== undefined ? "namespace+container" : "namespace";
}

function judgePath(raw: RawPath, specTargets: VerifySpec["targets"], pingOk: boolean | null): PathResult {
  const targets: TargetResult[] = specTargets.map((target) => {
    const ping = raw.pings.get(target.address);
    const tcp = target.tcpPort === undefined ? undefined : raw.tcps.get(`${target.address} ${target.tcpPort}`);
    return {
      address: target.address,
      ...(target.tcpPort !== undefined ? { tcpPort: target.tcpPort } : {}),
      icmp: target.icmp && ping ? ping.ok : null,
      tcp: tcp ?? null,
      rttMs: ping?.rtt ?? null,
    };
  });
  const addresses = raw.addresses.filter((entry) => !entry.tentative).map((entry) => entry.address);
  const tentative = raw.addresses.filter((entry) => entry.tentative).map((entry) => entry.address);
  const where = PLACE[raw.path];
  const result = (diagnosis: Diagnosis, detail: string): PathResult => ({
    path: raw.path,
    reachable: diagnosis === "reachable",
    diagnosis,
    detail,
    addresses,
    defaultRoute: raw.route,
    targets,
  });
  if (raw.noDaemon !== null) return result("daemon-not-running", `rootless Docker is not running: ${raw.noDaemon}`);
  if (raw.noImage !== null) return result("probe-image-missing", `the image ${raw.noImage} for ${where} is not on the host (it is never pulled)`);
  if (raw.failed !== null && raw.attempts === 0) return result("target-unreachable", `could not probe from ${where}: ${raw.failed}`);
  const expected = targets.flatMap((target, index) => [
    ...(specTargets[index].icmp ? [target.icmp] : []),
    ...(specTargets[index].tcpPort !== undefined ? [target.tcp] : []),
  ]);
  if (expected.length > 0 && expected.every((outcome) => outcome === true)) {
    return result("reachable", `${where} reaches ${targets.map((target) => target.address).join(", ")}`);
  }
  if (addresses.length === 0) {
    const pending = tentative.length > 0 ? ` (still tentative: ${tentative.join(", ")})` : "";
    return result("no-global-ipv6-address", `${where} has no usable global IPv6 address${pending}`);
  }
  if (raw.route === null) return result("no-default-route", `${where} has no IPv6 default route (addresses: ${addresses.join(", ")})`);
  const icmpFailed = targets.filter((target) => target.icmp === false);
  if (icmpFailed.length > 0 && pingOk === false) {
    const tcpWorks = targets.some((target) => target.tcp === true);
    return result(
      "icmp-blocked-by-ping-group-range",
      `ICMPv6 echo fails${tcpWorks ? " while TCP works" : ""}: the host's net.ipv4.ping_group_range excludes the user's groups, and slirp4netns/pasta need ping sockets on the host`,
    );
  }
  const failures = targets
    .flatMap((target, index) => [
      target.icmp === false ? `ping ${target.address}: ${raw.pings.get(target.address)?.reason || "no reply"}` : null,
      target.tcp === false ? `tcp [${target.address}]:${target.tcpPort}: no connection` : null,
      target.icmp === null && specTargets[index].icmp ? `ping ${target.address}: not probed` : null,
      target.tcp === null && target.tcpPort !== undefined ? `tcp [${target.address}]:${target.tcpPort}: not probed` : null,
    ])
    .filter((entry): entry is string => entry !== null);
  return result("target-unreachable", `from ${where}: ${failures.join("; ") || "no probe ran"}`);
}

/**
 * Interprets the output of `verifyScript`. Paths the script never reached (cut-off output) count as
 * unreachable with a detail that says so, never as success.
 */
export function parseVerification(stdout: string, options: { pingGroupRange: [number, number] | null }): VerificationResult {
  const { checkedAt, groups, targets, covers, paths: rawPaths } = readPaths(stdout);
  const pingOk = pingAllowed(options.pingGroupRange, groups);
  const judged = rawPaths.map((raw) => judgePath(raw, targets, pingOk));
  const never = (path: PathResult["path"]) => unprobedPath(path, "target-unreachable", `the verification produced no result for ${PLACE[path]} (${stdout.length} characters of output)`);
  // Output of a script older than the `covers` line: a container path shows that one was probed.
  const coverage: VerificationCoverage = covers ?? (judged.some((path) => path.path === "container") ? "namespace+container" : "namespace");
  const namespace = judged.find((path) => path.path === "namespace") ?? never("namespace");
  const container = coverage === "namespace+container" ? (judged.find((path) => path.path === "container") ?? never("container")) : null;
  return summarize(checkedAt, coverage, namespace, container);
}

/** The host's result from its paths: reachable only when every covered path is. */
function summarize(checkedAt: string, covers: VerificationCoverage, namespace: PathResult, container: PathResult | null): VerificationResult {
  const paths = container ? [namespace, container] : [namespace];
  const all = paths.flatMap((path) => path.targets);
  const failed = paths.find((path) => !path.reachable);
  const rtts = all.map((target) => target.rttMs).filter((rtt): rtt is number => rtt !== null);
  return {
    reachable: failed === undefined,
    covers,
    namespace,
    container,
    icmp: all.some((target) => target.icmp !== null) && all.every((target) => target.icmp !== false),
    tcp: all.some((target) => target.tcp !== null) && all.every((target) => target.tcp !== false),
    rttMs: rtts.length > 0 ? Math.max(...rtts) : null,
    checkedAt,
    diagnosis: failed?.diagnosis ?? "reachable",
    detail: paths.map((path) => `${path.path}: ${path.detail}`).join("; "),
    paths,
  };
}

/**
 * A verification that could not finish (time limit, lost connection): nothing is known, so every covered path is
 * `verification-unfinished` with the reason, and the host is not reachable.
 */
export function unfinishedVerification(reason: string, covers: VerificationCoverage, checkedAt: string): VerificationResult {
  const detail = `the verification did not finish: ${reason}`;
  const unfinished = (path: PathResult["path"]) => unprobedPath(path, "verification-unfinished", detail);
  const result = summarize(checkedAt, covers, unfinished("namespace"), covers === "namespace+container" ? unfinished("container") : null);
  return { ...result, detail };
}
