/**
 * Verification targets that prove nothing on a real host (issue 9, item 8): the facts read the host's own IPv6
 * addresses and default gateway, as the host's `ip` shows them, and the plan, the apply and the verify command
 * refuse a target that is one of them (the gateway under pasta with disableHostLoopback: false, which pasta maps to
 * the host) before anything is written, naming the host and what to set. (The classes that prove nothing anywhere,
 * loopback, link-local, documentation, …, are check's: tests/unit/address.test.ts and cli-hosts.test.ts.)
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

process.env.RDL_LAB = "verifytargets";

import { labDown, labUp, type LabHost } from "../../lab/api";
import { canonicalIpv6 } from "../../provider/core/address";
import * as engine from "../../provider/engine";
import { isCapabilityError } from "../../provider/errors";
import { hostLabel } from "../../provider/transport";
import { userCommand } from "../helpers/host-state";
import { labSpec } from "../helpers/lab-spec";

let host: LabHost;

before(async () => {
  await labDown();
  [host] = await labUp({ hosts: 1 });
});
after(async () => {
  await labDown();
});

/** What the host's own `ip` says: its global IPv6 addresses and the gateways of its IPv6 default routes. */
async function hostNetwork(): Promise<{ addresses: string[]; gateways: string[] }> {
  const addresses = await userCommand(host, "ip -6 -o addr show scope global");
  const routes = await userCommand(host, "ip -6 route show default");
  return {
    addresses: [...addresses.matchAll(/\binet6 ([0-9a-f:]+)\//g)].map((match) => canonicalIpv6(match[1])!).sort(),
    gateways: [...routes.matchAll(/\bvia ([0-9a-f:]+)/g)].map((match) => canonicalIpv6(match[1])!).sort(),
  };
}

describe("targets that prove nothing on this host are refused before any change", () => {
  it("the facts hold the host's own global IPv6 addresses and its default gateway, as the host's ip shows them", async () => {
    const { facts } = await engine.inspectHost(labSpec(host, { networkDriver: "slirp4netns" }));
    const seen = await hostNetwork();
    assert.ok(seen.addresses.length > 0 && seen.gateways.length > 0, JSON.stringify(seen));
    assert.deepEqual([...facts.hostIpv6.addresses].sort(), seen.addresses);
    assert.deepEqual([...facts.hostIpv6.defaultGateways].sort(), seen.gateways);
  });

  it("one of the host's own addresses: plan error, and the apply is refused naming the host, nothing written", async () => {
    const [own] = (await hostNetwork()).addresses;
    const spec = labSpec(host, { networkDriver: "slirp4netns", verify: { targets: [{ address: own, tcpPort: host.target.ipv6TcpPort }] } });
    const before = await userCommand(host, "cat ~/.config/systemd/user/docker.service.d/override.conf 2>/dev/null; systemctl --user show docker -p InvocationID --value");
    const { plan } = await engine.inspectHost(spec);
    assert.ok(plan.problems.some((problem) => problem.severity === "error" && problem.message.includes(`${own} is one of the host's own addresses`)), JSON.stringify(plan.problems));
    await assert.rejects(engine.applyHost(spec), (error: Error) => {
      assert.ok(isCapabilityError(error), String(error));
      assert.ok(error.message.includes(hostLabel({ user: host.user, host: host.address, port: host.port })), error.message);
      assert.match(error.message, /set verify\.targets\[0\]\.address to an IPv6 address of your own network/);
      return true;
    });
    assert.equal(await userCommand(host, "cat ~/.config/systemd/user/docker.service.d/override.conf 2>/dev/null; systemctl --user show docker -p InvocationID --value"), before);
    // The verify command refuses it too, instead of reporting a reachable host.
    await assert.rejects(engine.verifyHost(spec), (error: Error) => isCapabilityError(error) && error.message.includes("is one of the host's own addresses"));
  });

  it("pasta with disableHostLoopback: false: the host's default gateway is refused (pasta maps it to the host); with true it is planned", async () => {
    const [gateway] = (await hostNetwork()).gateways;
    const target = { verify: { targets: [{ address: gateway, tcpPort: host.target.ipv6TcpPort }] } };
    const mapped = await engine.inspectHost(labSpec(host, { networkDriver: "pasta", disableHostLoopback: false, ...target }));
    const gatewayProblem = (problems: { message: string }[]) => problems.some((problem) => problem.message.includes(`${gateway} is the host's IPv6 default gateway, which pasta maps to the host itself`));
    assert.ok(gatewayProblem(mapped.plan.problems), JSON.stringify(mapped.plan.problems));
    await assert.rejects(engine.applyHost(labSpec(host, { networkDriver: "pasta", disableHostLoopback: false, ...target })), (error: Error) => isCapabilityError(error) && error.message.includes("pasta maps to the host itself"));
    const unmapped = await engine.inspectHost(labSpec(host, { networkDriver: "pasta", disableHostLoopback: true, ...target }));
    assert.ok(!gatewayProblem(unmapped.plan.problems), JSON.stringify(unmapped.plan.problems));
  });
});
