import { RootlessDockerError, hasErrorName } from "./base";

/** Another apply held the host's lock for longer than the wait allowed. */
export class LockTimeoutError extends RootlessDockerError {
  override readonly name = "LockTimeoutError" as const;
}

export const isLockTimeoutError = (value: unknown): value is LockTimeoutError => hasErrorName(value, "LockTimeoutError");
