import { RootlessDockerError, hasErrorName } from "./base";

/** The host offered an SSH host key that is unknown or differs from the pinned one; no command was run. */
export class HostKeyError extends RootlessDockerError {
  /** Always `"HostKeyError"`: what `isHostKeyError` checks. */
  override readonly name = "HostKeyError" as const;
}

/** True for a `HostKeyError`, also one thrown by another copy of the package (checks `name`, not `instanceof`). */
export const isHostKeyError = (value: unknown): value is HostKeyError => hasErrorName(value, "HostKeyError");
