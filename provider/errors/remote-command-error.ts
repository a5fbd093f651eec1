import { RootlessDockerError, hasErrorName } from "./base";

/** A command on the host failed. */
export class RemoteCommandError extends RootlessDockerError {
  /** Always `"RemoteCommandError"`: what `isRemoteCommandError` checks. */
  override readonly name = "RemoteCommandError" as const;
}

/** True for a `RemoteCommandError`, also one thrown by another copy of the package (checks `name`, not `instanceof`). */
export const isRemoteCommandError = (value: unknown): value is RemoteCommandError => hasErrorName(value, "RemoteCommandError");
