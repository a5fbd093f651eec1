/**
 * Every error this package throws carries the host it concerns and the step that failed.
 * Type guards check `name` rather than `instanceof`: the provider is re-loaded from a
 * serialized string by the Pulumi engine, so class identity does not survive.
 */
export interface HostErrorDetails {
  /** `user@host:port` of the host the error concerns. */
  host: string;
  /** The step that failed, e.g. `connect`, `gather facts`, `write drop-in`, `restart`. */
  step: string;
  /** The remote command that failed, when one did (never contains credentials). */
  command?: string;
  /** The remote command's exit code, when one failed. */
  exitCode?: number;
  /** The stderr or journal lines that explain the failure. */
  evidence?: string[];
  /** The underlying error, kept as the error's `cause`. */
  cause?: unknown;
}

/** The base of every error this package throws: which host, which step, what failed and what to do (`message` holds all of it for people). */
export abstract class RootlessDockerError extends Error {
  /** The class's name (`CapabilityError`, …): what the `is…Error` guards check. */
  abstract override readonly name: string;
  /** `user@host:port` of the host the error concerns. */
  readonly host: string;
  /** The step that failed. */
  readonly step: string;
  /** What failed, in one sentence (the first line of `message` without host and step). */
  readonly summary: string;
  /** What to do about it. */
  readonly fix: string;
  /** The remote command that failed, when one did (never contains credentials). */
  readonly command?: string;
  /** Its exit code, when one failed. */
  readonly exitCode?: number;
  /** The remote stderr or journal lines that explain it (may be empty). */
  readonly evidence: string[];

  constructor(summary: string, hint: string, details: HostErrorDetails) {
    super(formatMessage(summary, hint, details), { cause: details.cause });
    this.host = details.host;
    this.step = details.step;
    this.summary = summary;
    this.fix = hint;
    this.command = details.command;
    this.exitCode = details.exitCode;
    this.evidence = details.evidence ?? [];
  }
}

/** One message: what failed on which host, what to do, then the command and its evidence. */
function formatMessage(summary: string, hint: string, details: HostErrorDetails): string {
  const lines = [`${details.host}: ${details.step}: ${summary}`];
  if (hint) lines.push(`  fix: ${hint}`);
  if (details.command !== undefined) {
    const exit = details.exitCode === undefined ? "" : ` (exit code ${details.exitCode})`;
    lines.push(`  command${exit}: ${details.command}`);
  }
  const evidence = (details.evidence ?? []).filter((line) => line.trim() !== "").slice(-20);
  if (evidence.length > 0) lines.push("  evidence:", ...evidence.map((line) => `    ${line}`));
  return lines.join("\n");
}

/** True for any error of this package, also one from another copy of it (checks the fields, not `instanceof`). */
export function isRootlessDockerError(value: unknown): value is RootlessDockerError {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as { name?: unknown }).name === "string" &&
    typeof (value as { host?: unknown }).host === "string" &&
    typeof (value as { step?: unknown }).step === "string"
  );
}

/** True for an error of this package whose `name` is `name`. */
export function hasErrorName(value: unknown, name: string): boolean {
  return isRootlessDockerError(value) && value.name === name;
}

/**
 * The same error with one more line of context (e.g. where a fleet rollout stands): its class, `name`, host and
 * step stay as they were, so guards and callers still recognise it.
 */
export function withContextLine<E extends Error>(error: E, line: string): E {
  error.message = `${error.message}\n  ${line}`;
  return error;
}
