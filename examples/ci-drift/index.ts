/**
 * The stack the drift workflow checks. `pulumi preview --refresh` reads every host (our resource's `read`
 * reports what the host really has: the drop-in, what systemd loaded, what the daemon runs) and compares
 * it with what is declared here; the workflow fails when they differ.
 */
import * as pulumi from "@pulumi/pulumi";
import { RootlessDockerNetwork } from "pulumi-rootless-docker";

const config = new pulumi.Config();
const addresses = config.requireObject<string[]>("hosts");
const hostKeys = config.requireObject<string[]>("hostKeys");

export const hosts = addresses.map((address, index) => {
  const network = new RootlessDockerNetwork(`docker-network-${index}`, {
    connection: { host: address, user: config.get("user") ?? "dev", hostKey: hostKeys[index], privateKey: config.requireSecret("privateKey") },
    networkDriver: "slirp4netns",
    ipv6: true,
    verify: { targets: [{ address: config.require("verifyTarget") }] },
  });
  return { address, verification: network.verification };
});
