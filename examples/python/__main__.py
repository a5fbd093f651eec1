"""One rootless Docker host networked with IPv6 by the rootless-docker plugin, from Python."""

import pulumi
import pulumi_rootless_docker as rootless_docker

config = pulumi.Config()

network = rootless_docker.Network(
    "network",
    connection={
        "host": config.require("host"),
        "user": config.get("user") or "dev",
        "host_key": config.require("hostKey"),
        "private_key": config.require_secret("privateKey"),
    },
    network_driver=config.get("networkDriver") or "slirp4netns",
    ipv6=True,
    verify={
        "targets": [{"address": config.require("verifyTarget"), "tcp_port": config.get_int("verifyTcpPort") or 443}],
        "required": True,
    },
    # Adopts a host that already has the drop-in (its id: user@host:port/unit/dropInName) instead of creating it.
    opts=pulumi.ResourceOptions(import_=config.get("importId")),
)

pulumi.export("networkDriverInEffect", network.network_driver_in_effect)
pulumi.export("ipv6InEffect", network.ipv6_in_effect)
pulumi.export("ipv6Reachable", network.verification.apply(lambda v: v.reachable if v else None))
