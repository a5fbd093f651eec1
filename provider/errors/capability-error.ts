import { RootlessDockerError, hasErrorName } from "./base";

/** The host cannot provide the requested networking (versions or binaries missing); nothing was written. */
export class CapabilityError extends RootlessDockerError {
  override readonly name = "CapabilityError" as const;
}

export const isCapabilityError = (value: unknown): value is CapabilityError => hasErrorName(value, "CapabilityError");
