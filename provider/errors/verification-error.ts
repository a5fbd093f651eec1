import { RootlessDockerError, hasErrorName } from "./base";

/** IPv6 reachability was required but not verified after the apply. */
export class VerificationError extends RootlessDockerError {
  override readonly name = "VerificationError" as const;
}

export const isVerificationError = (value: unknown): value is VerificationError => hasErrorName(value, "VerificationError");
