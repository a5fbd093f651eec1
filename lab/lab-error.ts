import { RootlessDockerError } from "../provider/errors/base";

/** The lab could not build, boot, reach or tear down a test host. `host` is the lab host (or instance) name. */
export class LabError extends RootlessDockerError {
  override readonly name = "LabError" as const;
}

