// One rootless Docker host networked with IPv6 by the rootless-docker plugin, from Go.
package main

import (
	"github.com/pulumi-rootless-docker/sdk/go/rootlessdocker"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/config"
)

func main() {
	pulumi.Run(func(ctx *pulumi.Context) error {
		cfg := config.New(ctx, "")
		user := cfg.Get("user")
		if user == "" {
			user = "dev"
		}
		driver := cfg.Get("networkDriver")
		if driver == "" {
			driver = "slirp4netns"
		}
		tcpPort := cfg.GetInt("verifyTcpPort")
		if tcpPort == 0 {
			tcpPort = 443
		}
		network, err := rootlessdocker.NewNetwork(ctx, "network", &rootlessdocker.NetworkArgs{
			Connection: &rootlessdocker.ConnectionArgs{
				Host:       pulumi.String(cfg.Require("host")),
				User:       pulumi.String(user),
				HostKey:    pulumi.String(cfg.Require("hostKey")),
				PrivateKey: cfg.RequireSecret("privateKey"),
			},
			NetworkDriver: rootlessdocker.NetworkDriver(driver),
			Ipv6:          pulumi.Bool(true),
			Verify: &rootlessdocker.VerifyArgs{
				Targets:  rootlessdocker.VerifyTargetArray{rootlessdocker.VerifyTargetArgs{Address: pulumi.String(cfg.Require("verifyTarget")), TcpPort: pulumi.Int(tcpPort)}},
				Required: pulumi.Bool(true),
			},
		})
		if err != nil {
			return err
		}
		ctx.Export("networkDriverInEffect", network.NetworkDriverInEffect)
		ctx.Export("ipv6InEffect", network.Ipv6InEffect)
		ctx.Export("ipv6Reachable", network.Verification.Reachable())
		return nil
	})
}
