import { RootlessDockerError, hasErrorName } from "./base";

/**
 * The apply ran, but the host read again afterwards does not have what was declared: each setting that did not
 * take effect is named with what is in effect and the source that decides it. Never a silent success.
 */
export class ConvergenceError extends RootlessDockerError {
  override readonly name = "ConvergenceError" as const;
}

export const isConvergenceError = (value: unknown): value is ConvergenceError => hasErrorName(value, "ConvergenceError");
