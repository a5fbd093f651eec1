import { RootlessDockerError, hasErrorName } from "./base";

/**
 * The apply ran, but the host read again afterwards does not have what was declared: each setting that did not
 * take effect is named with what is in effect and the source that decides it. Never a silent success.
 */
export class ConvergenceError extends RootlessDockerError {
  /** Always `"ConvergenceError"`: what `isConvergenceError` checks. */
  override readonly name = "ConvergenceError" as const;
}

/** True for a `ConvergenceError`, also one thrown by another copy of the package (checks `name`, not `instanceof`). */
export const isConvergenceError = (value: unknown): value is ConvergenceError => hasErrorName(value, "ConvergenceError");
