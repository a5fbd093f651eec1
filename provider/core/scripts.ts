/**
 * POSIX `sh` scripts the engine runs over SSH as the unprivileged user, and the parser of their output.
 * Pure strings: every value embedded in a script goes through `shellQuote` or base64, and output that
 * could contain anything travels base64 so no content can forge a `RDN …` marker line.
 */
import { remoteScript, shellQuote } from "./remote";
import type { FileWrite } from "./types";

export { shellQuote };

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
  /** The InvocationID the plan saw: a restart-only apply restarts only if the daemon still runs that invocation. */
  expectedInvocationId?: string;
  /** The facts script, run again under the lock once the apply is done (its output comes back as `RDN facts`). */
  factsScript?: string;
}

export interface RollbackParams extends LockParams {
  /** sha256 (hex) of each file as the apply being undone wrote it; null = it removed the file. */
  expectedSha256: Record<string, string | null>;
  /** Restart on the restored files (default true: the daemon must not keep running the rejected settings). */
  restart?: boolean;
}

/** The scripts take paths absolute or relative to the remote home: `~/x` becomes `x`. */
const remotePath = (path: string) => (path.startsWith("~/") ? path.slice(2) : path);

function lockParameters(params: LockParams): Record<string, string> {
  return {
    rdn_unit: params.unit,
    ...(params.lockPath === undefined ? {} : { rdn_lock_path: remotePath(params.lockPath) }),
    rdn_lock_wait: String(Math.max(0, Math.floor(params.lockWaitSeconds))),
    rdn_lock_holder: params.lockHolder,
    rdn_backup_dir: remotePath(params.backupDir),
    rdn_active_timeout: String(Math.max(1, Math.ceil(params.activeTimeoutSeconds))),
  };
}

/** Lines `BASE64-PATH SHA256|absent` (paths travel base64: a home directory may hold any character). */
function expectedLines(expectedSha256: Record<string, string | null>): string {
  return Object.entries(expectedSha256)
    .map(([path, sha]) => `${toBase64(remotePath(path))} ${sha ?? "absent"}`)
    .join("\n");
}

/**
 * The apply (provider/remote/apply.sh): lock, compare-and-swap against the facts (files, and the InvocationID of a
 * restart-only apply), backup, atomic writes, daemon-reload, restart with a bounded wait for the unit and the
 * RootlessKit API, rollback (with journal lines) on failure, and the facts read again before the lock is released.
 */
export function applyScript(params: ApplyParams): string {
  const writes = params.writes.map((write) => `${toBase64(remotePath(write.path))} ${(write.mode & 0o7777).toString(8)} ${write.content === null ? "-" : toBase64(write.content)}`);
  return remoteScript("apply", {
    ...lockParameters(params),
    rdn_expected: expectedLines(params.expectedSha256),
    rdn_writes: writes.join("\n"),
    rdn_daemon_reload: params.daemonReload ? "1" : "0",
    rdn_restart: params.restart ? "1" : "0",
    ...(params.expectedInvocationId === undefined ? {} : { rdn_expected_invocation: params.expectedInvocationId }),
    rdn_facts: params.factsScript === undefined ? "" : toBase64(params.factsScript),
  });
}

/**
 * Restores the backups of the last apply (provider/remote/rollback.sh: the engine's answer to a failed required
 * check), unless another apply has written since: the files must still be what ours wrote (`expectedSha256`).
 */
export function rollbackScript(params: RollbackParams): string {
  return remoteScript("rollback", {
    ...lockParameters(params),
    rdn_expected: expectedLines(params.expectedSha256),
    rdn_restart: params.restart === false ? "0" : "1",
  });
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
  /** Output of the facts script run again under the lock at the end of an apply. */
  factsAfter?: string;
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
  let factsAfter: string | undefined;
  for (const line of stdout.split("\n")) {
    const [marker, kind, ...fields] = line.trim().split(" ");
    if (marker !== "RDN") continue;
    if (kind === "step" && fields.length >= 2) steps.push({ name: fields[0], status: fields[1], detail: fromBase64(fields[2] ?? "") });
    else if (kind === "journal") journal.push(...fromBase64(fields[0] ?? "").split("\n").filter((entry) => entry !== ""));
    else if (kind === "holder") lockHolder = fromBase64(fields[0] ?? "").trim();
    else if (kind === "changed") changedPath = fromBase64(fields[0] ?? "");
    else if (kind === "result") printedResult = fields[0];
    else if (kind === "facts") factsAfter = fromBase64(fields[0] ?? "");
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
    ...(factsAfter !== undefined ? { factsAfter } : {}),
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
