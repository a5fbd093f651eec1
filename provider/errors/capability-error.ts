import { RootlessDockerError, hasErrorName } from "./base";

/** The host cannot provide the requested networking (versions or binaries missing); nothing was written. */
export class CapabilityError extends RootlessDockerError {
  /** Always `"CapabilityError"`: what `isCapabilityError` checks. */
  override readonly name = "CapabilityError" as const;
}

/** True for a `CapabilityError`, also one thrown by another copy of the package (checks `name`, not `instanceof`). */
export const isCapabilityError = (value: unknown): value is CapabilityError => hasErrorName(value, "CapabilityError");
