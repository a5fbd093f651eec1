import { RootlessDockerError, hasErrorName } from "./base";

/** An apply failed and the previous drop-in was restored; the host is back where it started. */
export class RollbackError extends RootlessDockerError {
  /** Always `"RollbackError"`: what `isRollbackError` checks. */
  override readonly name = "RollbackError" as const;
}

/** True for a `RollbackError`, also one thrown by another copy of the package (checks `name`, not `instanceof`). */
export const isRollbackError = (value: unknown): value is RollbackError => hasErrorName(value, "RollbackError");
