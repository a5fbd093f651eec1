/**
 * The repository's own Pulumi program (`pulumi up` at the root): a RootlessDockerFleet over the hosts in
 * stack config, or over the lab's hosts when none are configured. Hosts are read and validated exactly
 * like the CLI's hosts file (same format, same schema, keys by path), then handed to the fleet.
 * Build first (`npm run build`): the resource loads the package's compiled provider by name.
 */
import * as pulumi from "@pulumi/pulumi";
import { RootlessDockerFleet } from "pulumi-rootless-docker";
import { resolveHosts, type HostEntry } from "../provider/cli/hosts";
import { LAB_DEFAULTS, labHostEntries, readLab } from "../lab/cli-hosts";

async function main() {
  const config = new pulumi.Config();
  const configured = config.getObject<HostEntry[]>("hosts");
  let lab: HostEntry[] | undefined;
  if (configured === undefined) {
    const labHosts = await readLab();
    if (!labHosts.ok) throw new Error(`no hosts in stack config and no lab: ${labHosts.problems.map((problem) => problem.reason).join("; ")}`);
    lab = labHostEntries(labHosts.value);
  }
  const defaults = config.getObject<Record<string, unknown>>("defaults") ?? (lab ? LAB_DEFAULTS : {});
  const hosts = resolveHosts({ defaults, hosts: configured ?? [], baseDir: process.cwd() }, { lab });
  if (!hosts.ok) {
    throw new Error(`invalid hosts in stack config:\n${hosts.problems.map((problem) => `  ${problem.property}: ${problem.reason}`).join("\n")}`);
  }
  hosts.warnings.forEach((warning) => pulumi.log.warn(warning));

  const fleet = new RootlessDockerFleet("rootless-docker", {
    hosts: hosts.value.map(({ name, spec }) => ({
      name,
      ...spec,
      // The key was read from privateKeyPath; as a secret it is encrypted in the state.
      connection: { ...spec.connection, privateKey: spec.connection.privateKey === undefined ? undefined : pulumi.secret(spec.connection.privateKey) },
    })),
    batchSize: config.getNumber("batchSize") ?? 1,
    canary: config.getBoolean("canary") ?? false,
  });
  return { waves: fleet.waves, verifications: fleet.verifications };
}

export = main();
