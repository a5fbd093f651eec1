/**
 * What the resource's serialized shim finds under the name `pulumi-rootless-docker/dynamic` while the benchmark
 * seeds a stack's state (bench/pulumi.ts): `create` records the validated inputs, as the real create echoes them,
 * without touching the host. The lab's hosts have no running Docker, so a real create would start rootless Docker on
 * every host, and the other rows plan those hosts as they are. Our diff reads only the recorded inputs from the
 * state; the observations a real create adds (InvocationID, versions, …) are left out.
 */
import type * as pulumi from "@pulumi/pulumi";
import { provider as real, validated } from "../provider/dynamic";

export const provider: pulumi.dynamic.ResourceProvider = {
  check: (olds, news) => real.check!(olds, news),
  async create(inputs) {
    const { spec } = validated(inputs, "create");
    const { user, host, port } = spec.connection;
    // The real create's id: `${user@host:port}/${unit}/${dropInName}`; JSON drops what is undefined, as a Struct must.
    return { id: `${user}@${host}:${port}/${spec.unit}/${spec.dropInName}`, outs: JSON.parse(JSON.stringify(spec)) as Record<string, unknown> };
  },
};
