import { RootlessDockerError, hasErrorName } from "./base";

/** A command on the host failed. */
export class RemoteCommandError extends RootlessDockerError {
  override readonly name = "RemoteCommandError" as const;
}

export const isRemoteCommandError = (value: unknown): value is RemoteCommandError => hasErrorName(value, "RemoteCommandError");
