/**
 * The common recipe for IPv6 in rootless Docker, as code: pasta as the network driver, the implicit port
 * driver, `--ipv6`, and a verification that containers really reach an IPv6 address afterwards. Unlike
 * the hand-written drop-in, this also runs `daemon-reload`, sets the MTU, and notices when someone edits
 * the file later (`pulumi preview --refresh`).
 */
import * as pulumi from "@pulumi/pulumi";
import { RootlessDockerNetwork } from "pulumi-rootless-docker";

const config = new pulumi.Config();

const network = new RootlessDockerNetwork("docker-network", {
  connection: {
    host: config.require("host"),
    user: config.get("user") ?? "dev",
    hostKey: config.require("hostKey"),
    privateKey: config.requireSecret("privateKey"),
  },
  networkDriver: "pasta",
  portDriver: "implicit",
  ipv6: true,
  mtu: 65520,
  // RootlessKit < 2.3.0 starts pasta without IPv6; this adds an ExecStartPost helper that fixes the namespace.
  pastaIpv6Compat: config.getBoolean("pastaIpv6Compat") ?? false,
  verify: {
    targets: [{ address: config.require("verifyTarget"), tcpPort: config.getNumber("verifyTcpPort") ?? 443 }],
    // A host that cannot reach IPv6 after the change is rolled back to its previous settings.
    required: true,
  },
});

export const verification = network.verification;
