/**
 * POSIX `sh` scripts the engine runs over SSH as the unprivileged user, and the parser of their output.
 * Pure strings: every value embedded in a script goes through `shellQuote` or base64, and output that
 * could contain anything travels base64 so no content can forge a `RDN …` marker line.
 */
import { remoteScript, shellQuote } from "./remote";
import { REMOTE_SCRIPTS } from "./remote-scripts.generated";
import type { FileWrite } from "./types";

export { shellQuote };

/** A path as a shell word; a leading `~/` stays relative to the remote `$HOME`. */
export function shellPath(path: string): string {
  return path.startsWith("~/") ? `"$HOME"/${shellQuote(path.slice(2))}` : shellQuote(path);
}

/** Base64 of UTF-8 text (Buffer is a global, not an I/O module). */
export function toBase64(text: string): string {
  return Buffer.from(text, "utf8").toString("base64");
}

/**
 * The command line that runs a script with /bin/sh whatever the user's login shell is (sshd hands the command to
 * it: fish or csh would misread the script itself). The script travels base64-encoded (letters, digits, `+/=`:
 * the same in every shell) and is fully in the local pipe before sh runs, so a dropped connection cannot cut it.
 */
export function remoteShellCommand(script: string): string {
  return `echo ${toBase64(script)} | base64 -d | /bin/sh`;
}

export function fromBase64(encoded: string): string {
  return Buffer.from(encoded, "base64").toString("utf8");
}

/** Environment every script sets up first (provider/remote/lib/session.sh). */
export const SESSION_PRELUDE = REMOTE_SCRIPTS["lib/session"];

/** Shell functions that locate the running RootlessKit and enter its namespace (provider/remote/lib/rootlesskit.sh). */
export const ROOTLESSKIT_FUNCTIONS = REMOTE_SCRIPTS["lib/rootlesskit"];

// ---------------------------------------------------------------------------------------------
// apply / rollback

/** Exit codes of the apply and rollback scripts; distinct so the engine never has to guess from text. */
export const APPLY_EXIT = {
  ok: 0,
  failed: 1,
  lockTimeout: 75,
  changedSincePlan: 76,
  rolledBack: 77,
  rollbackFailed: 78,
} as const;

export interface LockParams {
  unit: string;
  /** Default `$XDG_RUNTIME_DIR/pulumi-rootless-docker/apply.lock`. */
  lockPath?: string;
  lockWaitSeconds: number;
  /** Who is applying (shown to a second apply that has to wait). */
  lockHolder: string;
  /** Where backups live, e.g. `~/.local/state/pulumi-rootless-docker/backup` (never inside `UNIT.d/`). */
  backupDir: string;
  /** Bound for waiting until the unit is active and the RootlessKit API answers. */
  activeTimeoutSeconds: number;
}

export interface ApplyParams extends LockParams {
  writes: FileWrite[];
  /** sha256 (hex) of each file as the facts saw it; null = it did not exist. */
  expectedSha256: Record<string, string | null>;
  daemonReload: boolean;
  restart: boolean;
}

export interface RollbackParams extends LockParams {
  /** sha256 (hex) of each file as the apply being undone wrote it; null = it removed the file. */
  expectedSha256: Record<string, string | null>;
  /** Restart on the restored files (default true: the daemon must not keep running the rejected settings). */
  restart?: boolean;
}

/**
 * The functions both the apply and the rollback script use. Markers: `RDN step NAME STATUS [b64]`,
 * `RDN journal b64`, `RDN holder b64`, `RDN changed b64`, and one final `RDN result NAME`.
 */
const APPLY_FUNCTIONS = `rdn_step() { printf 'RDN step %s %s %s\\n' "$1" "$2" "$(printf '%s' "\${3:-}" | rdn_b64)"; }
rdn_finish() { printf 'RDN result %s\\n' "$1"; exit "$2"; }
rdn_lock() {
  mkdir -p "$(dirname "$rdn_lock_path")" || { rdn_step lock failed "cannot create $(dirname "$rdn_lock_path")"; rdn_finish failed ${APPLY_EXIT.failed}; }
  exec 9>>"$rdn_lock_path"
  if ! flock -w "$rdn_lock_wait" 9; then
    printf 'RDN holder %s\\n' "$(cat "$rdn_lock_path.holder" 2>/dev/null | rdn_b64)"
    rdn_step lock failed "held by another apply for more than $rdn_lock_wait s"
    rdn_finish lock-timeout ${APPLY_EXIT.lockTimeout}
  fi
  printf '%s (pid %s, since %s)\\n' "$rdn_lock_holder" "$$" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$rdn_lock_path.holder"
  rdn_step lock ok
}
rdn_sha() { if [ -e "$1" ]; then sha256sum < "$1" | cut -d ' ' -f 1; else echo absent; fi; }
rdn_put_file() {
  rdn_dir=$(dirname "$1")
  mkdir -p "$rdn_dir" || return 1
  rdn_tmp="$rdn_dir/.pulumi-rootless-docker.$$.tmp"
  if cat > "$rdn_tmp" && chmod "$2" "$rdn_tmp" && mv -f "$rdn_tmp" "$1"; then return 0; fi
  rm -f "$rdn_tmp"
  return 1
}
rdn_restore() {
  [ -f "$rdn_backup_dir/complete" ] || { rdn_step restore failed "no complete backup in $rdn_backup_dir"; return 1; }
  rdn_restore_ok=0
  for rdn_entry in "$rdn_backup_dir"/*.path; do
    [ -f "$rdn_entry" ] || continue
    rdn_base=\${rdn_entry%.path}
    rdn_target=$(cat "$rdn_entry")
    if [ -e "$rdn_base.absent" ]; then
      rm -f "$rdn_target" || rdn_restore_ok=1
    else
      rdn_put_file "$rdn_target" "$(cat "$rdn_base.mode")" < "$rdn_base.orig" || rdn_restore_ok=1
    fi
  done
  if [ "$rdn_restore_ok" = 0 ]; then rdn_step restore ok; else rdn_step restore failed; fi
  return "$rdn_restore_ok"
}
rdn_api_ready() {
  rdn_main=$(systemctl --user show -p MainPID --value "$rdn_unit")
  rdn_sd=$(rdn_state_dir "$rdn_main")
  if command -v curl >/dev/null 2>&1; then
    curl -sf --max-time 2 --unix-socket "$rdn_sd/api.sock" http://rootlesskit/v1/info >/dev/null 2>&1
  else
    [ -S "$rdn_sd/api.sock" ] && rdn_child_pid "$rdn_sd" >/dev/null
  fi
}
rdn_invocation() { systemctl --user show -p InvocationID --value "$rdn_unit" 2>/dev/null; }
rdn_wait_active() {
  rdn_deadline=$(( $(date +%s) + rdn_active_timeout ))
  while :; do
    rdn_state=$(systemctl --user show -p ActiveState --value "$rdn_unit" 2>/dev/null)
    if [ "$rdn_state" = active ] && [ "$(rdn_invocation)" != "$1" ] && rdn_api_ready; then return 0; fi
    [ "$rdn_state" = failed ] && return 1
    [ "$(date +%s)" -ge "$rdn_deadline" ] && return 1
    sleep 0.3
  done
}
rdn_restart() {
  systemctl --user reset-failed "$rdn_unit" >/dev/null 2>&1
  rdn_before=$(rdn_invocation)
  if ! rdn_err=$(systemctl --user restart --no-block "$rdn_unit" 2>&1); then rdn_step "$1restart" failed "$rdn_err"; return 1; fi
  rdn_step "$1restart" ok
  if rdn_wait_active "$rdn_before"; then rdn_step "$1wait-active" ok; return 0; fi
  rdn_step "$1wait-active" failed "not active with a RootlessKit API within $rdn_active_timeout s (state: $rdn_state)"
  return 1
}
rdn_daemon_reload() {
  if rdn_err=$(systemctl --user daemon-reload 2>&1); then rdn_step "$1daemon-reload" ok; return 0; fi
  rdn_step "$1daemon-reload" failed "$rdn_err"
  return 1
}
rdn_journal() {
  rdn_lines=$(journalctl --user -u "$rdn_unit" -n 40 --no-pager 2>/dev/null)
  [ -n "$rdn_lines" ] || rdn_lines=$(systemctl --user status "$rdn_unit" -n 40 --no-pager 2>&1)
  printf 'RDN journal %s\\n' "$(printf '%s\\n' "$rdn_lines" | rdn_b64)"
}
rdn_roll_back() {
  rdn_journal
  rdn_restore || rdn_finish rollback-failed ${APPLY_EXIT.rollbackFailed}
  rdn_daemon_reload rollback- || rdn_finish rollback-failed ${APPLY_EXIT.rollbackFailed}
  if [ "$1" = restart ]; then
    rdn_restart rollback- || { rdn_journal; rdn_finish rollback-failed ${APPLY_EXIT.rollbackFailed}; }
  fi
  rdn_finish rolled-back ${APPLY_EXIT.rolledBack}
}
`;

function scriptHeader(params: LockParams): string {
  const lockPath = params.lockPath === undefined ? `"$XDG_RUNTIME_DIR/pulumi-rootless-docker/apply.lock"` : shellPath(params.lockPath);
  return `#!/bin/sh
# pulumi-rootless-docker: runs to the end even when the SSH connection drops, so the host ends either
# unchanged or fully applied.
trap '' HUP PIPE
${SESSION_PRELUDE}rdn_unit=${shellQuote(params.unit)}
rdn_lock_path=${lockPath}
rdn_lock_wait=${Math.max(0, Math.floor(params.lockWaitSeconds))}
rdn_lock_holder=${shellQuote(params.lockHolder)}
rdn_backup_dir=${shellPath(params.backupDir)}
rdn_active_timeout=${Math.max(1, Math.ceil(params.activeTimeoutSeconds))}
${ROOTLESSKIT_FUNCTIONS}${APPLY_FUNCTIONS}`;
}

/** Takes backups of every file in `writes` into a fresh backup dir, then marks it complete. */
function backupCommands(writes: FileWrite[]): string {
  const lines = [
    `rdn_staging="$rdn_backup_dir.new"`,
    `rm -rf "$rdn_staging" && mkdir -p "$rdn_staging" || { rdn_step backup failed "cannot create $rdn_staging"; rdn_finish failed ${APPLY_EXIT.failed}; }`,
  ];
  writes.forEach((write, index) => {
    const base = `"$rdn_staging/${index}"`;
    lines.push(
      `rdn_target=${shellPath(write.path)}`,
      `printf '%s' "$rdn_target" > ${base}.path`,
      `if [ -e "$rdn_target" ]; then cp "$rdn_target" ${base}.orig && stat -c %a "$rdn_target" > ${base}.mode || { rdn_step backup failed "cannot copy $rdn_target"; rdn_finish failed ${APPLY_EXIT.failed}; }; else : > ${base}.absent; fi`,
    );
  });
  lines.push(
    `: > "$rdn_staging/complete"`,
    `rm -rf "$rdn_backup_dir" && mv "$rdn_staging" "$rdn_backup_dir" || { rdn_step backup failed "cannot replace $rdn_backup_dir"; rdn_finish failed ${APPLY_EXIT.failed}; }`,
    `rdn_step backup ok`,
  );
  return lines.join("\n");
}

/** Writes one file atomically unless it already has that content; a failure rolls back what was written. */
function writeCommands(write: FileWrite): string {
  const target = shellPath(write.path);
  if (write.content === null) {
    return `if [ -e ${target} ]; then
  if rm -f ${target}; then rdn_changed=1; rdn_step write ok ${target}; else rdn_step write failed ${target}; rdn_roll_back no-restart; fi
else rdn_step write unchanged ${target}; fi`;
  }
  const mode = (write.mode & 0o7777).toString(8);
  const content = shellQuote(toBase64(write.content));
  return `if printf '%s' ${content} | base64 -d | cmp -s - ${target} 2>/dev/null && [ "$(stat -c %a ${target})" = ${shellQuote(mode)} ]; then rdn_step write unchanged ${target}
elif printf '%s' ${content} | base64 -d | rdn_put_file ${target} ${shellQuote(mode)}; then rdn_changed=1; rdn_step write ok ${target}
else rdn_step write failed ${target}; rdn_roll_back no-restart; fi`;
}

/**
 * The apply: lock, compare-and-swap against the facts, backup, atomic writes, daemon-reload, restart with
 * a bounded wait for the unit and the RootlessKit API, and rollback (with journal lines) on failure.
 */
export function applyScript(params: ApplyParams): string {
  const body = [
    `rdn_lock`,
    ...compareCommands(params.expectedSha256),
    `rdn_changed=0`,
    backupCommands(params.writes),
    ...params.writes.map(writeCommands),
  ];
  if (params.daemonReload) body.push(`rdn_daemon_reload || rdn_roll_back no-restart`);
  // After a failed restart the rollback restarts again: the unit must not stay down on the new config.
  if (params.restart) body.push(`if rdn_restart; then rdn_changed=1; else rdn_roll_back restart; fi`);
  body.push(`if [ "$rdn_changed" = 1 ]; then rdn_finish applied ${APPLY_EXIT.ok}; else rdn_finish unchanged ${APPLY_EXIT.ok}; fi`);
  return `${scriptHeader(params)}${body.join("\n")}\n`;
}

/**
 * Restores the backups of the last apply (the engine's answer to a failed required verification), unless another
 * apply has written since: the files must still be what ours wrote (`expectedSha256`), or its backups are not ours.
 */
export function rollbackScript(params: RollbackParams): string {
  const restart = params.restart === false ? "no-restart" : "restart";
  return `${scriptHeader(params)}${["rdn_lock", ...compareCommands(params.expectedSha256), `rdn_roll_back ${restart}`].join("\n")}\n`;
}

/** Compare-and-swap: every file must have the sha256 the caller saw (or be absent); otherwise stop, changing nothing. */
function compareCommands(expectedSha256: Record<string, string | null>): string[] {
  return [
    ...Object.entries(expectedSha256).map(
      ([path, sha]) =>
        `[ "$(rdn_sha ${shellPath(path)})" = ${shellQuote(sha ?? "absent")} ] || { printf 'RDN changed %s\\n' "$(printf '%s' ${shellPath(path)} | rdn_b64)"; rdn_step compare failed ${shellPath(path)}; rdn_finish changed-since-plan ${APPLY_EXIT.changedSincePlan}; }`,
    ),
    `rdn_step compare ok`,
  ];
}

// ---------------------------------------------------------------------------------------------
// parse

export type ApplyResultKind = "applied" | "unchanged" | "rolled-back" | "rollback-failed" | "lock-timeout" | "changed-since-plan" | "failed";

export interface ApplyStep {
  /** lock, compare, backup, write, daemon-reload, restart, wait-active, restore, rollback-daemon-reload, … */
  name: string;
  /** ok, failed, unchanged */
  status: string;
  detail: string;
}

export interface ApplyOutcome {
  result: ApplyResultKind;
  steps: ApplyStep[];
  journal: string[];
  lockHolder?: string;
  /** The file that changed since the facts were read (changed-since-plan). */
  changedPath?: string;
  failedStep?: string;
  detail: string;
}

const RESULT_BY_EXIT: Record<number, ApplyResultKind> = {
  [APPLY_EXIT.lockTimeout]: "lock-timeout",
  [APPLY_EXIT.changedSincePlan]: "changed-since-plan",
  [APPLY_EXIT.rolledBack]: "rolled-back",
  [APPLY_EXIT.rollbackFailed]: "rollback-failed",
};

const RESULT_KINDS: readonly string[] = ["applied", "unchanged", "rolled-back", "rollback-failed", "lock-timeout", "changed-since-plan", "failed"];

/** Reads the markers of `applyScript`/`rollbackScript`; a missing result line (connection lost, killed) is `failed`. */
export function parseApplyOutcome(stdout: string, exitCode: number): ApplyOutcome {
  const steps: ApplyStep[] = [];
  const journal: string[] = [];
  let lockHolder: string | undefined;
  let changedPath: string | undefined;
  let printedResult: string | undefined;
  for (const line of stdout.split("\n")) {
    const [marker, kind, ...fields] = line.trim().split(" ");
    if (marker !== "RDN") continue;
    if (kind === "step" && fields.length >= 2) steps.push({ name: fields[0], status: fields[1], detail: fromBase64(fields[2] ?? "") });
    else if (kind === "journal") journal.push(...fromBase64(fields[0] ?? "").split("\n").filter((entry) => entry !== ""));
    else if (kind === "holder") lockHolder = fromBase64(fields[0] ?? "").trim();
    else if (kind === "changed") changedPath = fromBase64(fields[0] ?? "");
    else if (kind === "result") printedResult = fields[0];
  }
  const failed = steps.find((step) => step.status === "failed");
  const result: ApplyResultKind =
    printedResult !== undefined && RESULT_KINDS.includes(printedResult) ? (printedResult as ApplyResultKind) : (RESULT_BY_EXIT[exitCode] ?? "failed");
  return {
    result,
    steps,
    journal,
    ...(lockHolder !== undefined ? { lockHolder } : {}),
    ...(changedPath !== undefined ? { changedPath } : {}),
    ...(failed !== undefined ? { failedStep: failed.name } : {}),
    detail: describeOutcome(result, failed, printedResult === undefined, exitCode, lockHolder, changedPath),
  };
}

function describeOutcome(
  result: ApplyResultKind,
  failed: ApplyStep | undefined,
  noResultLine: boolean,
  exitCode: number,
  lockHolder: string | undefined,
  changedPath: string | undefined,
): string {
  const failure = failed === undefined ? "" : `${failed.name} failed${failed.detail ? `: ${failed.detail}` : ""}`;
  switch (result) {
    case "applied":
      return "applied";
    case "unchanged":
      return "nothing to change";
    case "lock-timeout":
      return `another apply holds the lock${lockHolder ? `: ${lockHolder}` : ""}`;
    case "changed-since-plan":
      return `${changedPath ?? "a managed file"} changed since the facts were read`;
    case "rolled-back":
      return `${failure || "apply failed"}; the previous files were restored`;
    case "rollback-failed":
      return `${failure || "apply failed"}; restoring the previous files failed too`;
    case "failed":
      return noResultLine ? `the script ended without a result (exit code ${exitCode})${failure ? `; ${failure}` : ""}` : failure || `failed (exit code ${exitCode})`;
  }
}

// ---------------------------------------------------------------------------------------------
// pasta IPv6 compat helper

/**
 * The `ExecStartPost=` helper for RootlessKit < 2.3 with pasta (provider/remote/compat-helper.sh): gives tap0 the
 * host's global IPv6 address and a default route, which is what RootlessKit 2.3's `--config-net` does.
 */
export function compatHelperScript(): string {
  return remoteScript("compat-helper");
}
