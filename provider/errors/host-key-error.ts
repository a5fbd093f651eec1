import { RootlessDockerError, hasErrorName } from "./base";

/** The host offered an SSH host key that is unknown or differs from the pinned one; no command was run. */
export class HostKeyError extends RootlessDockerError {
  override readonly name = "HostKeyError" as const;
}

export const isHostKeyError = (value: unknown): value is HostKeyError => hasErrorName(value, "HostKeyError");
