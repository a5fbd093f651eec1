import { RootlessDockerError, hasErrorName } from "./base";

/** An apply failed and the previous drop-in was restored; the host is back where it started. */
export class RollbackError extends RootlessDockerError {
  override readonly name = "RollbackError" as const;
}

export const isRollbackError = (value: unknown): value is RollbackError => hasErrorName(value, "RollbackError");
