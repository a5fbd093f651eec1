/**
 * Rolling out in waves. On five lab hosts with batch size 2 (through the CLI, which uses the same
 * planWaves as RootlessDockerFleet): restarts happen wave after wave, judged by the hosts' unit start
 * times; a host made to fail stops the later waves, which stay untouched. And the Pulumi component wires
 * each wave to depend on the previous one (checked with Pulumi's mocks).
 */
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { stringify } from "yaml";
import type { LabHost } from "../../lab/api";
import { assertReportInSync } from "../helpers/in-sync";
import { runCli } from "../../provider/cli/main";
import * as engine from "../../provider/engine";

process.env.RDL_LAB = "rdlfleet";
const { breakDocker, labDown, labUp, userExec } = require("../../lab/api") as typeof import("../../lab/api");

/** Where a host's daemon stands: which run of the unit, started when (CLOCK_MONOTONIC, shared by every host on this kernel), and our drop-in. */
async function unitState(host: string): Promise<{ invocation: string; startedUs: number; dropIn: string }> {
  const result = await userExec(
    host,
    "systemctl --user show docker -p InvocationID -p ExecMainStartTimestampMonotonic; echo ---; cat ~/.config/systemd/user/docker.service.d/override.conf 2>/dev/null || true",
  );
  assert.equal(result.exitCode, 0, result.stderr);
  const [props, dropIn] = result.stdout.split("---\n");
  const value = (name: string) => props.match(new RegExp(`^${name}=(.*)$`, "m"))?.[1] ?? "";
  return { invocation: value("InvocationID"), startedUs: Number(value("ExecMainStartTimestampMonotonic")), dropIn };
}

describe("waves on five lab hosts", { timeout: 900_000 }, () => {
  let hosts: LabHost[];
  let dir: string;

  before(async () => {
    hosts = await labUp({ hosts: 5, profile: "trixie" });
    dir = mkdtempSync(join(tmpdir(), "rdn-fleet-lab-"));
  });

  after(async () => {
    await labDown();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const apply = async (settings: object) => {
    const file = join(dir, `hosts-${Date.now()}.yaml`);
    writeFileSync(file, stringify({ defaults: { verify: { required: true, timeoutSeconds: 30 }, ...settings } }));
    const stdout: string[] = [];
    const stderr: string[] = [];
    const code = await runCli(["apply", "--lab", "--hosts", file, "--batch-size", "2", "--json"], {
      stdout: (text) => stdout.push(text),
      stderr: (text) => stderr.push(text),
      interactive: false,
      engine,
    });
    assert.ok(stdout.join("").trim().startsWith("{"), `no JSON (exit ${code}):\n${stdout.join("")}\n${stderr.join("")}`);
    return { code, report: JSON.parse(stdout.join("")) };
  };

  it("restarts the hosts wave after wave", async () => {
    const before = Object.fromEntries(await Promise.all(hosts.map(async (host) => [host.name, await unitState(host.name)] as const)));
    const { code, report } = await apply({ networkDriver: "slirp4netns", ipv6: true });
    assert.equal(code, 0, JSON.stringify(report, null, 2));
    assertReportInSync(report);
    assert.deepEqual(report.waves, [[hosts[0].name, hosts[1].name], [hosts[2].name, hosts[3].name], [hosts[4].name]]);

    const afterApply = Object.fromEntries(await Promise.all(hosts.map(async (host) => [host.name, await unitState(host.name)] as const)));
    for (const host of hosts) assert.notEqual(afterApply[host.name].invocation, before[host.name].invocation, `${host.name} was not restarted`);
    const starts = (report.waves as string[][]).map((wave) => wave.map((name) => afterApply[name].startedUs));
    for (let wave = 1; wave < starts.length; wave++) {
      assert.ok(
        Math.min(...starts[wave]) > Math.max(...starts[wave - 1]),
        `wave ${wave + 1} restarted (${starts[wave]}) before wave ${wave} had finished restarting (${starts[wave - 1]})`,
      );
    }
  });

  it("stops at a failing host and leaves the later waves untouched", async () => {
    const failing = hosts[2].name;
    const lastWave = hosts[4].name;
    await breakDocker(failing);
    const untouchedBefore = await unitState(lastWave);

    const { code, report } = await apply({ networkDriver: "slirp4netns", ipv6: true, mtu: 1500 });
    assert.equal(code, 1, JSON.stringify(report, null, 2));
    assert.equal(report.stoppedAtWave, 2);
    assertReportInSync(report);
    assert.deepEqual(report.outcome, { done: [hosts[0].name, hosts[1].name, hosts[3].name], failed: [failing], untouched: [lastWave] });
    const failedRow = report.hosts.find((row: { name: string }) => row.name === failing);
    assert.ok(failedRow.error.host.includes(`@${hosts[2].address}:`), `the error names the host: ${JSON.stringify(failedRow.error)}`);
    assert.equal((await unitState(hosts[0].name)).dropIn.includes("MTU=1500"), true, "wave 1 was converged");

    const untouchedAfter = await unitState(lastWave);
    assert.equal(untouchedAfter.dropIn, untouchedBefore.dropIn, `${lastWave}'s drop-in changed`);
    assert.equal(untouchedAfter.invocation, untouchedBefore.invocation, `${lastWave} was restarted`);
  });
});

describe("RootlessDockerFleet (Pulumi mocks)", () => {
  it("registers a wave only after every resource of the previous wave is done", async () => {
    const events: string[] = [];
    pulumi.runtime.setMocks(
      {
        newResource: async (args) => {
          if (args.type.includes("RootlessDockerFleet")) return { id: undefined, state: {} };
          events.push(`start ${args.name}`);
          await new Promise((resolve) => setImmediate(resolve));
          events.push(`end ${args.name}`);
          return { id: args.name, state: { ...args.inputs, verification: null } };
        },
        call: () => ({}),
      },
      "project",
      "stack",
      false,
    );
    const { RootlessDockerFleet } = require("../../provider/fleet") as typeof import("../../provider/fleet");
    const key = generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    const fleet = new RootlessDockerFleet("f", {
      defaults: { networkDriver: "slirp4netns", ipv6: true, connection: { user: "dev", privateKey: key } },
      hosts: ["h1", "h2", "h3", "h4", "h5"].map((name) => ({ name, connection: { host: `${name}.example` } })),
      batchSize: 2,
    });
    assert.deepEqual(fleet.waves, [["h1", "h2"], ["h3", "h4"], ["h5"]]);
    await Promise.all(Object.values(fleet.networks).map((network) => new Promise((resolve) => network.urn.apply(resolve))));
    const position = (event: string) => events.indexOf(event);
    for (const [earlier, later] of [[["h1", "h2"], ["h3", "h4"]], [["h3", "h4"], ["h5"]]]) {
      for (const done of earlier) for (const next of later) {
        assert.ok(position(`end f-${done}`) < position(`start f-${next}`), `f-${next} started before f-${done} ended: ${events.join(", ")}`);
      }
    }
  });
});
