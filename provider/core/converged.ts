/**
 * Whether an apply took effect: the plan made again on the facts read after it must have nothing left to do.
 * Pure: the engine gathers the facts and throws; this names each setting that is not in effect, what is, and why.
 */
import { withoutUndefined } from "./plan";
import { inputOfVariable } from "./schema";
import type { DiffLevel, HostPlan, NetworkSpec, PropertyChange } from "./types";

/** A declared setting the host does not have after the apply. */
export interface SettingGap {
  /** Variable or property (`DOCKERD_ROOTLESS_ROOTLESSKIT_MTU`, `ExecStartPost`, `daemon`). */
  property: string;
  /** The input that declares it (`mtu`), when it is one of our variables. */
  input?: string;
  desired?: string;
  /** What is in effect, at the deepest level that differs. */
  actual?: string;
  level: DiffLevel | "host";
  /** The source that decides the value, as far as the facts tell. */
  source: string;
}

const DEPTH: Record<DiffLevel, number> = { file: 0, effective: 1, running: 2 };

/** What a restart leaves unexplained: the facts show no file that sets the running value. */
const UNSEEN_SOURCE =
  "not a drop-in the facts read: the daemon was restarted and still runs this value, so another source decides it (an EnvironmentFile=, UnsetEnvironment=, the user manager's environment, or the unit's ExecStart)";

/**
 * The settings that did not take effect, judged on the plan made after the apply. With `restart: "never"` the
 * running daemon is allowed to lag (that is what the user asked for); every other difference is a gap.
 */
export function convergenceGaps(spec: NetworkSpec, after: HostPlan, context: { restarted: boolean }): SettingGap[] {
  const judged = after.changes.filter((change) => !(spec.restart === "never" && change.level === "running"));
  const byProperty = new Map<string, PropertyChange[]>();
  for (const change of judged) byProperty.set(change.property, [...(byProperty.get(change.property) ?? []), change]);
  const gaps: SettingGap[] = [...byProperty].map(([property, changes]) => {
    const deepest = [...changes].sort((a, b) => DEPTH[b.level] - DEPTH[a.level])[0]!;
    const stated = [...changes].reverse().find((change) => change.cause !== undefined && !(context.restarted && change.cause === "pending restart"))?.cause;
    const input = inputOfVariable(property);
    return withoutUndefined({
      property,
      input,
      desired: deepest.desired,
      actual: deepest.actual,
      level: deepest.level,
      source: stated ?? (deepest.level === "running" && context.restarted ? UNSEEN_SOURCE : "(no source named by the facts)"),
    });
  });
  for (const problem of after.problems.filter((entry) => entry.severity === "error")) {
    gaps.push({ property: "host", level: "host", source: `${problem.message} (${problem.hint})` });
  }
  if (gaps.length === 0 && after.daemonReload) {
    gaps.push({ property: "daemon-reload", level: "effective", desired: "loaded", actual: "NeedDaemonReload=yes", source: "a unit file changed on disk after the apply's daemon-reload" });
  }
  return gaps;
}

/** `mtu (DOCKERD_ROOTLESS_ROOTLESSKIT_MTU): declared 65520, in effect 1500 (running daemon); decided by: …` */
export function describeGap(gap: SettingGap): string {
  if (gap.level === "host") return `the host cannot be converged: ${gap.source}`;
  const name = gap.input ? `${gap.input} (${gap.property})` : gap.property;
  const where = gap.level === "running" ? "running daemon" : gap.level === "effective" ? "unit environment systemd has loaded" : "our drop-in";
  return `${name}: declared ${gap.desired ?? "(unset)"}, in effect ${gap.actual ?? "(unset)"} (${where}); decided by: ${gap.source}`;
}
