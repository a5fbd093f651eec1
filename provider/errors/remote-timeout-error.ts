import { RootlessDockerError, hasErrorName } from "./base";

/** A remote command did not finish within its time limit; its channel was closed (the host may still be working). */
export class RemoteTimeoutError extends RootlessDockerError {
  /** Always `"RemoteTimeoutError"`: what `isRemoteTimeoutError` checks. */
  override readonly name = "RemoteTimeoutError" as const;
}

/** True for a `RemoteTimeoutError`, also one thrown by another copy of the package (checks `name`, not `instanceof`). */
export const isRemoteTimeoutError = (value: unknown): value is RemoteTimeoutError => hasErrorName(value, "RemoteTimeoutError");
