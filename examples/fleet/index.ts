/**
 * A fleet: every host gets pasta with IPv6, rolled out in waves (a canary host first, then `batchSize`
 * hosts at a time) so that never more than a wave's containers are down. A `remote.Command` first
 * installs passt and enables linger; each host's network resource depends on its own prerequisite.
 * If a host fails to apply or verify, Pulumi skips every later wave: those hosts stay untouched.
 */
import { remote } from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { RootlessDockerFleet } from "pulumi-rootless-docker";

interface HostConfig {
  name: string;
  host: string;
  port?: number;
  /** The host's SSH public key line, pinned by the prerequisite step and by our resource. */
  hostKey: string;
}

const config = new pulumi.Config();
const hosts = config.requireObject<HostConfig[]>("hosts");
const user = config.get("user") ?? "dev";
const privateKey = config.requireSecret("privateKey");
const adminUser = config.get("adminUser") ?? "root";
const sudo = adminUser === "root" ? "" : "sudo -n ";

// Off for hosts that are prepared already (and where the `command` provider plugin is not available).
const prerequisites = ((config.getBoolean("prerequisites") ?? true) ? hosts : []).map(
  (host) =>
    new remote.Command(`${host.name}-prerequisites`, {
      // The same pinned host key as our resource below: @pulumi/command accepts any key when hostKey is unset.
      connection: { host: host.host, port: host.port, user: adminUser, privateKey: config.getSecret("adminPrivateKey") ?? privateKey, hostKey: host.hostKey },
      // passt provides pasta; linger keeps the user's systemd instance, and so rootless Docker, running without a login.
      create: `set -e; command -v pasta >/dev/null || { ${sudo}apt-get update -qq && ${sudo}apt-get install -y -qq passt; }; ${sudo}loginctl enable-linger ${user}`,
      triggers: [user],
    }),
);

const fleet = new RootlessDockerFleet("docker-network", {
  defaults: {
    connection: { user, privateKey },
    networkDriver: "pasta",
    portDriver: "implicit",
    ipv6: true,
    mtu: config.getNumber("mtu") ?? 65520,
    pastaIpv6Compat: config.getBoolean("pastaIpv6Compat") ?? false,
    verify: {
      targets: [{ address: config.require("verifyTarget"), tcpPort: config.getNumber("verifyTcpPort") ?? 443 }],
      // A wave only counts as done when its hosts verified; a failing host is rolled back and stops the rollout.
      required: true,
    },
  },
  hosts: hosts.map((host, index) => ({
    name: host.name,
    connection: { host: host.host, port: host.port, hostKey: host.hostKey },
    dependsOn: prerequisites.slice(index, index + 1),
  })),
  canary: true,
  batchSize: config.getNumber("batchSize") ?? 2,
});

export const waves = fleet.waves;
export const verifications = fleet.verifications;
