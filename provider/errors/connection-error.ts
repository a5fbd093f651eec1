import { RootlessDockerError, hasErrorName } from "./base";

/** The host could not be reached or refused the login (after the configured dial retries). */
export class ConnectionError extends RootlessDockerError {
  /** Always `"ConnectionError"`: what `isConnectionError` checks. */
  override readonly name = "ConnectionError" as const;
}

/** True for a `ConnectionError`, also one thrown by another copy of the package (checks `name`, not `instanceof`). */
export const isConnectionError = (value: unknown): value is ConnectionError => hasErrorName(value, "ConnectionError");
