/**
 * `examples/fleet` under the real Pulumi engine on four lab hosts: a canary, then waves of two. A host whose
 * required verification fails for real (the lab's target made unreachable from it) is rolled back and stops
 * every later wave, which keeps its files and its running daemon; the error names the hosts done, failed and
 * untouched. Once that host is repaired, a second `pulumi up` finishes the rollout wave after wave. Then a changed
 * input (the `mtu` config) rolls out in one uninterrupted `pulumi up`: canary, wave, wave. The restart order is read
 * on the hosts (each unit's InvocationID and start time on the shared monotonic clock), each verification's end in
 * the lab target's connection log (same clock), and the engine's own order in its event log.
 *
 * The example's `remote.Command` prerequisites are off (`prerequisites: false`): the `command` provider plugin
 * cannot be built here (the Go module proxy refuses github.com/pulumi/pulumi-command), and the lab hosts are
 * prepared already.
 */
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parse, stringify } from "yaml";
import type { LabHost } from "../../lab/api";
import { CHECKOUT } from "../../tools/pulumi/build";
import { pulumi } from "../helpers/pulumi-cli";

process.env.RDL_LAB = "rdlfleetpulumi";
// Loaded after RDL_LAB is set: the lab picks its instance from the environment.
const { blockTarget, labDown, labUp, targetConnections, unblockTarget, userExec } = require("../../lab/api") as typeof import("../../lab/api");

const DROP_IN = "~/.config/systemd/user/docker.service.d/override.conf";

/** Which run of the unit, started when (CLOCK_MONOTONIC, shared by every host on this kernel), and our drop-in. */
async function unitState(host: string): Promise<{ invocation: string; startedUs: number; dropIn: string }> {
  const result = await userExec(host, `systemctl --user show docker -p InvocationID -p ExecMainStartTimestampMonotonic; echo ---; cat ${DROP_IN} 2>/dev/null || true`);
  assert.equal(result.exitCode, 0, result.stderr);
  const [props, dropIn] = result.stdout.split("---\n");
  const value = (name: string) => props.match(new RegExp(`^${name}=(.*)$`, "m"))?.[1] ?? "";
  return { invocation: value("InvocationID"), startedUs: Number(value("ExecMainStartTimestampMonotonic")), dropIn };
}

/** What this test reads of an engine event (`pulumi up --event-log FILE` writes one JSON object a line). */
interface EngineEvent {
  sequence: number;
  resourcePreEvent?: { metadata: { urn: string }; planning?: boolean };
  resOutputsEvent?: { metadata: { urn: string }; planning?: boolean };
}

describe("examples/fleet with the real engine", { timeout: 1_800_000 }, () => {
  let hosts: LabHost[];
  let work: string;
  let project: string;
  const cli = (args: string[], env?: Record<string, string>) => pulumi(args, { cwd: project, stateDir: join(work, "state"), env });
  const run = (...args: string[]) => cli(args);
  const states = async () => Object.fromEntries(await Promise.all(hosts.map(async (host) => [host.name, await unitState(host.name)] as const)));

  before(async () => {
    hosts = await labUp({ hosts: 4, profile: "trixie" });
    work = mkdtempSync(join(tmpdir(), "rdn-fleet-example-"));
    // A copy of the example beside the checkout's node_modules (the workspace's), so the stack files stay out of the checkout.
    project = mkdtempSync(join(CHECKOUT, "dist", "fleet-example-"));
    cpSync(join(CHECKOUT, "examples", "fleet"), project, { recursive: true, filter: (source) => !/[/\\](node_modules|bin)$/.test(source) });

    const init = await run("stack", "init", "lab", "--non-interactive");
    assert.equal(init.exitCode, 0, init.stderr);
    const stackFile = join(project, "Pulumi.lab.yaml");
    const stack = (parse(readFileSync(stackFile, "utf8")) ?? {}) as Record<string, unknown>;
    const key = (name: string) => `rootless-docker-fleet:${name}`;
    stack.config = {
      [key("hosts")]: hosts.map((host) => ({ name: host.name, host: host.address, port: host.port, hostKey: host.hostPublicKey })),
      [key("user")]: hosts[0].user,
      [key("verifyTarget")]: hosts[0].target.ipv6,
      [key("verifyTcpPort")]: hosts[0].target.ipv6TcpPort,
      // Debian 13's RootlessKit 2.0.2 starts pasta without IPv6.
      [key("pastaIpv6Compat")]: true,
      [key("prerequisites")]: false,
    };
    writeFileSync(stackFile, stringify(stack));
    const secret = await run("config", "set", "--secret", "privateKey", "--", readFileSync(hosts[0].privateKeyPath, "utf8"));
    assert.equal(secret.exitCode, 0, secret.stderr);
  });

  after(async () => {
    if (hosts) await labDown();
    for (const dir of [work, project]) if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("stops at a host whose verification fails, leaving the later wave untouched, and names where the rollout stands", async () => {
    const [canary, second, failing, last] = hosts.map((host) => host.name);
    const before = await states();
    await blockTarget(failing);

    const up = await run("up", "--yes", "--skip-preview", "--non-interactive");
    const output = `${up.stdout}\n${up.stderr}`;
    assert.notEqual(up.exitCode, 0, output);
    const failingHost = hosts[2]!;
    assert.match(output, new RegExp(`${failingHost.user}@${failingHost.address.replace(/\./g, "\\.")}:22: verify: IPv6 is not reachable \\(target-unreachable: .*; the previous files were restored and the daemon restarted on them`));
    assert.match(output, new RegExp(`wave 2 of 3 failed at ${failing}, later waves are not started: done: ${canary}; failed: ${failing}; untouched: ${last}; still finishing in the same wave: ${second}`));

    const after = await states();
    for (const name of [canary, second]) {
      assert.notEqual(after[name].invocation, before[name].invocation, `${name} was not restarted`);
      assert.match(after[name].dropIn, /DOCKERD_ROOTLESS_ROOTLESSKIT_NET=pasta/, `${name} was not converged`);
    }
    assert.ok(Math.min(after[second].startedUs, after[failing].startedUs) > after[canary].startedUs, "wave 2 restarted before the canary had");
    // The failing host was rolled back to what it had: restarted on its previous files.
    assert.equal(after[failing].dropIn, before[failing].dropIn, `${failing}'s drop-in was not restored`);
    assert.notEqual(after[failing].invocation, before[failing].invocation, `${failing} was not restarted (to apply, then to roll back)`);
    assert.deepEqual(after[last], before[last], `${last} (the later wave) was touched`);

    // What the engine recorded: the waves that finished are in the state, the later wave's host never was.
    writeFileSync(join(CHECKOUT, "dist", "fleet-example-failed-up.txt"), output);
    const exported = await run("stack", "export");
    assert.equal(exported.exitCode, 0, exported.stderr);
    const urns = (JSON.parse(exported.stdout) as { deployment: { resources: { urn: string }[] } }).deployment.resources.map((resource) => resource.urn);
    for (const name of [canary, second]) assert.ok(urns.some((urn) => urn.endsWith(`::docker-network-${name}`)), `${name} is not in the state:\n${urns.join("\n")}`);
    assert.ok(!urns.some((urn) => urn.endsWith(`::docker-network-${last}`)), `${last} (the later wave) is in the state:\n${urns.join("\n")}`);
  });

  it("finishes the rollout once the host is repaired: the later wave restarts only after it", async () => {
    const [canary, second, failing, last] = hosts.map((host) => host.name);
    await unblockTarget(failing);
    const before = await states();

    const up = await run("up", "--yes", "--skip-preview", "--non-interactive");
    assert.equal(up.exitCode, 0, `${up.stdout}\n${up.stderr}`);

    const after = await states();
    for (const name of [canary, second]) assert.equal(after[name].invocation, before[name].invocation, `${name} was restarted though nothing changed there`);
    for (const name of [failing, last]) {
      assert.notEqual(after[name].invocation, before[name].invocation, `${name} was not restarted`);
      assert.match(after[name].dropIn, /DOCKERD_ROOTLESS_ROOTLESSKIT_NET=pasta/);
    }
    assert.ok(after[last].startedUs > after[failing].startedUs, `${last} (wave 3) restarted before ${failing} (wave 2)`);

    const preview = await run("preview", "--expect-no-changes", "--non-interactive");
    assert.equal(preview.exitCode, 0, `${preview.stdout}\n${preview.stderr}`);
  });

  it("rolls a changed input out in one uninterrupted up: each wave restarts only after every host of the one before restarted and verified", async () => {
    const names = hosts.map((host) => host.name);
    const [canary, second, failing, last] = names;
    const waves = [[canary], [second, failing], [last]];
    const planned = await run("stack", "output", "waves", "--json");
    assert.equal(planned.exitCode, 0, planned.stderr);
    assert.deepEqual(JSON.parse(planned.stdout), waves, "the example's waves are not a canary, then two hosts at a time");

    const before = await states();
    const set = await run("config", "set", "mtu", "9000");
    assert.equal(set.exitCode, 0, set.stderr);
    const eventLog = join(work, "mtu-up-events.jsonl");
    // --event-log exists only with PULUMI_DEBUG_COMMANDS (as the Automation API runs the CLI).
    const up = await cli(["up", "--yes", "--skip-preview", "--non-interactive", "--event-log", eventLog], { PULUMI_DEBUG_COMMANDS: "true" });
    assert.equal(up.exitCode, 0, `${up.stdout}\n${up.stderr}`);

    const after = await states();
    for (const name of names) {
      assert.notEqual(after[name].invocation, before[name].invocation, `${name} was not restarted`);
      assert.match(after[name].dropIn, /DOCKERD_ROOTLESS_ROOTLESSKIT_MTU=9000/, `${name} did not get the new MTU`);
    }
    // A verification ends with its last successful probe: the host's last connection to the lab's target since its restart.
    const connections = targetConnections();
    const verifiedUs = Object.fromEntries(names.map((name) => {
      const times = connections.filter((connection) => connection.host === name && connection.atUs > after[name].startedUs).map((connection) => connection.atUs);
      assert.ok(times.length > 0, `${name}'s verification did not reach the target after its restart`);
      return [name, Math.max(...times)] as const;
    }));
    // The engine's order: a step starts with its resourcePreEvent and ends (applied and verified) with its resOutputsEvent.
    const events = readFileSync(eventLog, "utf8").split("\n").filter((line) => line.trim() !== "").map((line) => JSON.parse(line) as EngineEvent);
    const sequenceOf = (kind: "resourcePreEvent" | "resOutputsEvent", name: string) => {
      const event = events.find((candidate) => candidate[kind]?.planning !== true && candidate[kind]?.metadata.urn.endsWith(`::docker-network-${name}`));
      assert.ok(event, `no ${kind} for ${name} in the event log`);
      return event.sequence;
    };
    for (let wave = 1; wave < waves.length; wave++) {
      for (const name of waves[wave]) {
        for (const previous of waves[wave - 1]) {
          assert.ok(after[name].startedUs > verifiedUs[previous], `${name} (wave ${wave + 1}) restarted before ${previous} (wave ${wave}) had finished verifying`);
          assert.ok(sequenceOf("resourcePreEvent", name) > sequenceOf("resOutputsEvent", previous), `the engine started ${name} (wave ${wave + 1}) before ${previous} (wave ${wave}) had finished`);
        }
      }
    }

    const preview = await run("preview", "--expect-no-changes", "--non-interactive");
    assert.equal(preview.exitCode, 0, `${preview.stdout}\n${preview.stderr}`);
    const again = await run("up", "--yes", "--skip-preview", "--non-interactive");
    assert.equal(again.exitCode, 0, `${again.stdout}\n${again.stderr}`);
    const settled = await states();
    for (const name of names) assert.equal(settled[name].invocation, after[name].invocation, `the second up restarted ${name}`);
  });
});
