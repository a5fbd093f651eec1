/**
 * The Pulumi program of `npm run bench`'s `pulumi preview` rows: one RootlessDockerNetwork per host of the hosts
 * file the CLI row plans (stack config `hostsFile`), read and validated as the CLI reads it, so both plan the same
 * inputs. Without `hostsFile` it declares nothing: the start-up baseline (same modules loaded, no resources).
 */
import * as pulumi from "@pulumi/pulumi";
import { readHostsFile, resolveHosts } from "../provider/cli/hosts";
import { RootlessDockerNetwork, type RootlessDockerNetworkArgs } from "../provider/resource";

const hostsFile = new pulumi.Config().get("hostsFile");
if (hostsFile !== undefined) {
  const document = readHostsFile(hostsFile);
  const hosts = document.ok ? resolveHosts(document.value) : document;
  if (!hosts.ok) throw new Error(`${hostsFile}: ${hosts.problems.map((problem) => `${problem.property}: ${problem.reason}`).join("; ")}`);
  for (const { name, spec } of hosts.value) {
    // The key was read from privateKeyPath, as the CLI reads it; as a secret it is encrypted in the state.
    const connection = { ...spec.connection, privateKey: spec.connection.privateKey === undefined ? undefined : pulumi.secret(spec.connection.privateKey) };
    new RootlessDockerNetwork(name, { ...spec, connection } as RootlessDockerNetworkArgs);
  }
}
