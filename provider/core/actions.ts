/**
 * What an apply will do on a host, from its plan: the files it writes or removes (with a unified diff on request),
 * whether it reloads systemd and restarts the daemon, and why. Shown by the CLI's plan and the plugin's preview
 * from the same function, so both say the same.
 */
import { unifiedDiff } from "./diff";
import type { HostFacts, HostPlan } from "./types";

/** One file the apply writes or removes. */
export interface PlannedFile {
  /** Absolute path on the host. */
  path: string;
  /** Which of our files: the drop-in, the pastaIpv6Compat helper, or daemon.json (containerIpv6). */
  role: "drop-in" | "compat-helper" | "daemon.json";
  /** create: absent now; update: its content changes; remove: the apply deletes it. */
  action: "create" | "update" | "remove";
  /** File mode the apply sets (octal text, e.g. "644"); absent for a removal. */
  mode?: string;
  /** With `--diff` (`diff: true`): a unified diff from what the host has (as the facts read it) to what the apply writes. */
  diff?: string;
}

/** A step the apply takes or skips, and why. */
export interface PlannedStep {
  /** The apply takes this step. */
  will: boolean;
  /** Why it does, or why not. */
  reason: string;
}

/** What the apply will do on one host. */
export interface PlanActions {
  /** The systemd user unit the reload and restart concern (`docker.service`). */
  unit: string;
  /** The files written or removed, in the order the apply writes them; empty when none. */
  files: PlannedFile[];
  /** `systemctl --user daemon-reload`. */
  daemonReload: PlannedStep;
  /** `systemctl --user restart UNIT`: every container of this rootless Docker stops. */
  restart: PlannedStep;
}

/** The plan's actions on a host; `diff` adds each file's unified diff (the host's content may be private: on request only). */
export function planActions(unit: string, facts: HostFacts, plan: HostPlan, options: { diff?: boolean } = {}): PlanActions {
  const before = new Map<string, string | null>([
    [facts.dropIn.path, facts.dropIn.content],
    [facts.daemonJson.path, facts.daemonJson.content],
    [facts.compatScript.path, facts.compatScript.content],
  ]);
  const files = plan.writes.map((write): PlannedFile => {
    const current = before.get(write.path) ?? null;
    const role = write.path === facts.dropIn.path ? "drop-in" : write.path === facts.daemonJson.path ? "daemon.json" : "compat-helper";
    return {
      path: write.path,
      role,
      action: write.content === null ? "remove" : current === null ? "create" : "update",
      ...(write.content === null ? {} : { mode: (write.mode & 0o7777).toString(8) }),
      ...(options.diff ? { diff: unifiedDiff(write.path, current, write.content) } : {}),
    };
  });
  return { unit, files, daemonReload: { will: plan.daemonReload, reason: plan.daemonReloadReason }, restart: { will: plan.restart, reason: plan.restartReason } };
}

/** The actions as lines for people: each file, then daemon-reload and restart with yes/no and the reason. */
export function actionLines(actions: PlanActions): string[] {
  const files = actions.files.length === 0 ? ["writes no file"] : actions.files.map((file) => `${file.action === "remove" ? "removes" : file.action === "create" ? "creates" : "writes"} ${file.path} (${file.role}${file.mode ? `, mode ${file.mode}` : ""})`);
  return [
    ...files,
    `daemon-reload: ${actions.daemonReload.will ? "yes" : "no"} (${actions.daemonReload.reason})`,
    `restart ${actions.unit}: ${actions.restart.will ? "yes" : "no"} (${actions.restart.reason})`,
  ];
}
