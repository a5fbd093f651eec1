import { RootlessDockerError, hasErrorName } from "./base";

/** IPv6 reachability was required but not verified after the apply. */
export class VerificationError extends RootlessDockerError {
  /** Always `"VerificationError"`: what `isVerificationError` checks. */
  override readonly name = "VerificationError" as const;
}

/** True for a `VerificationError`, also one thrown by another copy of the package (checks `name`, not `instanceof`). */
export const isVerificationError = (value: unknown): value is VerificationError => hasErrorName(value, "VerificationError");
