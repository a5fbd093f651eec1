import { RootlessDockerError } from "../provider/errors/base";

/** A benchmark step failed: a tool errored or answered something other than a plan. `host` names the tool or host. */
export class BenchError extends RootlessDockerError {
  override readonly name = "BenchError" as const;
}
