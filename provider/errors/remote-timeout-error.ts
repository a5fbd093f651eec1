import { RootlessDockerError, hasErrorName } from "./base";

/** A remote command did not finish within its time limit; its channel was closed (the host may still be working). */
export class RemoteTimeoutError extends RootlessDockerError {
  override readonly name = "RemoteTimeoutError" as const;
}

export const isRemoteTimeoutError = (value: unknown): value is RemoteTimeoutError => hasErrorName(value, "RemoteTimeoutError");
