import { RootlessDockerError, hasErrorName } from "./base";

/** The host could not be reached or refused the login (after the configured dial retries). */
export class ConnectionError extends RootlessDockerError {
  override readonly name = "ConnectionError" as const;
}

export const isConnectionError = (value: unknown): value is ConnectionError => hasErrorName(value, "ConnectionError");
