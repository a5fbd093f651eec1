import { RootlessDockerError, hasErrorName } from "./base";

/** Another apply held the host's lock for longer than the wait allowed. */
export class LockTimeoutError extends RootlessDockerError {
  /** Always `"LockTimeoutError"`: what `isLockTimeoutError` checks. */
  override readonly name = "LockTimeoutError" as const;
}

/** True for a `LockTimeoutError`, also one thrown by another copy of the package (checks `name`, not `instanceof`). */
export const isLockTimeoutError = (value: unknown): value is LockTimeoutError => hasErrorName(value, "LockTimeoutError");
