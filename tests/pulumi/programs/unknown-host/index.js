/**
 * A connection whose host is known only once another resource exists: the address is an output of a dynamic
 * resource, unknown while previewing a create.
 */
"use strict";
const pulumi = require("@pulumi/pulumi");
const { RootlessDockerNetwork } = require("pulumi-rootless-docker");

const config = new pulumi.Config();

/** Stands for an inventory lookup: the address is only known after create. */
const inventory = {
  async create(inputs) {
    return { id: `address-of-${inputs.source}`, outs: { source: inputs.source, address: inputs.source } };
  },
};
const lookup = new pulumi.dynamic.Resource(inventory, "host-address", { source: config.require("host"), address: undefined });

const network = new RootlessDockerNetwork("docker-network", {
  connection: {
    host: lookup.address,
    user: config.get("user") ?? "dev",
    hostKey: config.require("hostKey"),
    privateKey: config.requireSecret("privateKey"),
  },
  networkDriver: "slirp4netns",
  portDriver: "builtin",
  mtu: 65520,
  ipv6: false,
  verify: { enabled: false },
});

// Shows as [unknown] in a preview of the first up.
exports.address = lookup.address;
exports.host = network.host;
