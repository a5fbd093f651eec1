/** Text for people: one block per host with its table, and a closing line with the exit code's meaning. */
import { actionLines } from "../core/actions";
import type { RunningNetwork } from "../core/running";
import { MANAGED_PREFIX } from "../core/schema";
import type { CapabilityProblem, DiffLevel, VerificationResult } from "../core/types";
import { describeWaveOutcome } from "../core/waves";
import type { ApplyReport, ApplyRow, ErrorSummary, PlanChange, PlanReport, PlanRow, Report, VerifyReport } from "./run";

export function renderReport(report: Report): string {
  switch (report.command) {
    case "plan":
      return renderPlan(report);
    case "apply":
      return renderApply(report);
    case "verify":
      return renderVerify(report);
  }
}

function renderPlan(report: PlanReport): string {
  const blocks = report.hosts.map((row) => {
    const lines = [header(row.name, row.host, row.status)];
    if (row.running) lines.push(`  running: ${describeRunning(row.running)}`);
    lines.push(...changeTable(row.changes), ...problemLines(row.problems), ...planActionLines(row), ...errorLines(row.error));
    return lines.join("\n");
  });
  const counts = countBy(report.hosts.map((row) => row.status));
  const meaning = { 0: "nothing differs", 1: "a host could not be planned or cannot be converged", 2: "differences found" }[report.exitCode];
  const restarts = report.summary.restart;
  const restarting = `${restarts.length} will restart Docker${restarts.length > 0 ? ` (${restarts.join(", ")})` : ""}`;
  return [...blocks, `plan: ${report.hosts.length} host(s): ${counts}; ${restarting}; exit code ${report.exitCode} (${meaning})`].join("\n\n");
}

/** What the apply would do on the host, then each file's diff when asked for (`--diff`). */
function planActionLines(row: PlanRow): string[] {
  if (!row.actions) return [];
  const diffs = row.actions.files.flatMap((file) => (file.diff ? file.diff.replace(/\n$/, "").split("\n").map((line) => `    ${line}`) : []));
  return ["  apply would:", ...actionLines(row.actions).map((line) => `    ${line}`), ...diffs];
}

function renderApply(report: ApplyReport): string {
  const blocks = report.waves.map((wave, index) => {
    const rows = report.hosts.filter((row) => row.wave === index + 1);
    return [`wave ${index + 1}/${report.waves.length}: ${wave.join(", ")}`, ...rows.map(applyRowText)].join("\n\n");
  });
  const stopped =
    report.stoppedAtWave === undefined
      ? ""
      : `wave ${report.stoppedAtWave} of ${report.waves.length} failed; later waves were not started. `;
  const meaning = { 0: "converged and verified", 1: "a host failed", 2: "converged, but IPv6 is unreachable on a host" }[report.exitCode];
  return [...blocks, `apply: ${stopped}${describeWaveOutcome(report.outcome)}; exit code ${report.exitCode} (${meaning})`].join("\n\n");
}

function applyRowText(row: ApplyRow): string {
  const lines = [header(row.name, row.host, row.status + (row.restarted ? ", restarted" : ""))];
  if (row.status !== "untouched") lines.push(...changeTable(row.changes));
  if (row.verification) lines.push(...verificationLines(row.verification));
  lines.push(...row.warnings.map((warning) => `  warning: ${warning}`), ...errorLines(row.error));
  return lines.join("\n");
}

function renderVerify(report: VerifyReport): string {
  const blocks = report.hosts.map((row) =>
    [header(row.name, undefined, row.status), ...(row.verification ? verificationLines(row.verification) : []), ...errorLines(row.error)].join("\n"),
  );
  const meaning = { 0: "every host reachable", 1: "a host could not be checked", 2: "IPv6 unreachable on a host" }[report.exitCode];
  return [...blocks, `verify: ${report.hosts.length} host(s): ${countBy(report.hosts.map((row) => row.status))}; exit code ${report.exitCode} (${meaning})`].join("\n\n");
}

function header(name: string, host: string | undefined, status: string): string {
  return `${name}${host ? ` (${host})` : ""}: ${status.toUpperCase()}`;
}

function describeRunning(running: RunningNetwork): string {
  if (running.networkDriver === null) return "no RootlessKit daemon found";
  return [
    `--net=${running.networkDriver}`,
    `--port-driver=${running.portDriver ?? "(default)"}`,
    running.ipv6 ? "--ipv6" : "no --ipv6",
    `--mtu=${running.mtu ?? "(default)"}`,
    ...(running.detachNetns ? ["--detach-netns"] : []),
    ...running.extraFlags,
  ].join(" ");
}

const LEVELS: readonly DiffLevel[] = ["file", "effective", "running"];

/**
 * One row per property that differs somewhere, with the three levels side by side: what our drop-in says (file),
 * what systemd will start (effective), what runs now (running). `=` is as desired; `-` is not compared at that level.
 */
function changeTable(changes: readonly PlanChange[]): string[] {
  if (changes.length === 0) return [];
  const byProperty = new Map<string, PlanChange[]>();
  for (const change of changes) byProperty.set(change.property, [...(byProperty.get(change.property) ?? []), change]);
  // Without a running daemon nothing is compared on the running level but the daemon itself.
  const daemonDown = changes.some((change) => change.level === "running" && change.property === "daemon");
  const rows = [...byProperty].map(([property, propertyChanges]) => {
    const desired = propertyChanges[0].desired;
    // Our variables are compared on every level; the other properties (ExecStartPost, daemon.json keys, the running command line) only where they appear.
    const comparedEverywhere = property.startsWith(MANAGED_PREFIX);
    const cells = LEVELS.map((level) => {
      const change = propertyChanges.find((candidate) => candidate.level === level);
      if (change) return change.desired === desired ? orUnset(change.actual) : `${orUnset(change.actual)} (expects ${orUnset(change.desired)})`;
      return comparedEverywhere && !(level === "running" && daemonDown) ? "=" : "-";
    });
    const causes = [...new Set(propertyChanges.flatMap((change) => (change.cause ? [change.cause] : [])))];
    return [property, propertyChanges[0].input ?? "", orUnset(desired), ...cells, causes.join("; ")];
  });
  return table([["property", "input", "desired", ...LEVELS, "cause"], ...rows]).map((line) => `  ${line}`);
}

const orUnset = (value: string | undefined) => value ?? "(unset)";

function problemLines(problems: readonly CapabilityProblem[]): string[] {
  return problems.flatMap((problem) => [`  ${problem.severity}: ${problem.message}`, `    fix: ${problem.hint}`]);
}

function verificationLines(verification: VerificationResult): string[] {
  const rtt = verification.rttMs === null ? "" : `, rtt ${verification.rttMs} ms`;
  const where = verification.covers === "namespace+container" ? "the namespace and a bridge container" : "the namespace only";
  return [
    `  verification: ${verification.reachable ? "IPv6 reachable" : "IPv6 UNREACHABLE"} from ${where} (icmp ${yesNo(verification.icmp)}, tcp ${yesNo(verification.tcp)}${rtt}): ${verification.diagnosis}`,
    ...verification.paths.map(
      (path) =>
        `    ${path.path}: ${path.diagnosis}; addresses ${path.addresses.join(", ") || "none"}; default route ${path.defaultRoute ?? "none"}${path.detail ? `; ${path.detail}` : ""}`,
    ),
    ...(verification.container === null ? ["    container: not probed (containerIpv6 is not managed)"] : []),
  ];
}

function errorLines(error: ErrorSummary | undefined): string[] {
  if (!error) return [];
  return [
    `  ${error.type}: ${error.host ? `${error.host}: ` : ""}${error.step}: ${error.message}`,
    ...(error.fix ? [`    fix: ${error.fix}`] : []),
    ...(error.command ? [`    command${error.exitCode === undefined ? "" : ` (exit code ${error.exitCode})`}: ${error.command}`] : []),
    ...(error.evidence.some((line) => line.trim() !== "") ? ["    evidence:", ...error.evidence.filter((line) => line.trim() !== "").slice(-20).map((line) => `      ${line}`)] : []),
  ];
}

function table(rows: string[][]): string[] {
  const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => row[column].length)));
  return rows.map((row) => row.map((cell, column) => cell.padEnd(widths[column])).join("  ").trimEnd());
}

function countBy(values: readonly string[]): string {
  const counts = new Map<string, number>();
  values.forEach((value) => counts.set(value, (counts.get(value) ?? 0) + 1));
  return [...counts].map(([value, count]) => `${count} ${value}`).join(", ");
}

const yesNo = (value: boolean) => (value ? "yes" : "no");
