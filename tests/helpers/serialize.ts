/**
 * The `__provider` text exactly as `pulumi.dynamic.Resource` produces it, for tests that drive the real
 * dynamic-provider host or load the text in a fresh process.
 */
import * as pulumi from "@pulumi/pulumi";
import { providerShim } from "../../provider/resource";

/** `dynamic.Resource` serializes `() => provider` with secrets allowed; the host calls `.handler()` on the loaded text. */
export async function serializeProvider(provider: pulumi.dynamic.ResourceProvider = providerShim): Promise<pulumi.runtime.SerializedFunction> {
  return pulumi.runtime.serializeFunction(() => provider, { allowSecrets: true });
}
