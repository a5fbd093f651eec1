/**
 * A fleet host's `rollout` input: validated strictly, never part of what reaches the host or what diff compares,
 * and named in the error of a failed create so that the user sees which hosts are done, failed and untouched.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { validateNetworkArgs } from "../../provider/core/schema";
import { describeFailedHost, type Rollout } from "../../provider/core/waves";
import { provider } from "../../provider/dynamic";
import { isConnectionError } from "../../provider/errors";
import { closedPort } from "../helpers/ports";

const rollout: Rollout = { fleet: "edge", host: "web3", waves: [["web1"], ["web2", "web3", "web4"], ["web5", "web6"]] };
const args = (port = 22) => ({
  connection: { host: "127.0.0.1", port, user: "alice", password: "not-a-real-password", dialErrorLimit: 1, perDialTimeout: 2 },
  networkDriver: "pasta",
  ipv6: true,
});


function problemsOf(raw: unknown): string[] {
  const validation = validateNetworkArgs(raw);
  return validation.ok ? [] : validation.problems.map((problem) => problem.property);
}

describe("rollout input", () => {
  it("is accepted, and the spec (what reaches the host and what diff compares) is the same with or without it", () => {
    const withRollout = validateNetworkArgs({ ...args(), rollout });
    const without = validateNetworkArgs(args());
    assert.ok(withRollout.ok && without.ok);
    assert.deepEqual(withRollout.value, without.value);
    assert.ok(!("rollout" in withRollout.value));
  });

  it("is validated strictly: unknown keys, non-ASCII or empty names, empty waves, a host outside the waves", () => {
    assert.deepEqual(problemsOf({ ...args(), rollout: { ...rollout, wave: 2 } }), ["rollout.wave"]);
    // Cyrillic "е" would let a name disguise another host in the message.
    assert.deepEqual(problemsOf({ ...args(), rollout: { ...rollout, fleet: "\u0435dge" } }), ["rollout.fleet"]);
    assert.deepEqual(problemsOf({ ...args(), rollout: { ...rollout, waves: [["web1"], [], ["web3", "web 4"]] } }), ["rollout.waves[1]", "rollout.waves[2][1]"]);
    assert.deepEqual(problemsOf({ ...args(), rollout: { ...rollout, host: "web9" } }), ["rollout.host"]);
    assert.deepEqual(problemsOf({ ...args(), rollout: { fleet: "edge", host: "web1" } }), ["rollout.waves"]);
  });
});

describe("describeFailedHost", () => {
  it("names the earlier waves done, the host failed, its wave's peers still finishing and the later waves untouched", () => {
    assert.equal(
      describeFailedHost(rollout),
      "fleet edge: wave 2 of 3 failed at web3, later waves are not started: done: web1; failed: web3; untouched: web5, web6; still finishing in the same wave: web2, web4",
    );
  });

  it("for a lone canary: nothing done, no peers", () => {
    assert.equal(
      describeFailedHost({ ...rollout, host: "web1" }),
      "fleet edge: wave 1 of 3 failed at web1, later waves are not started: done: none; failed: web1; untouched: web2, web3, web4, web5, web6",
    );
  });
});

describe("provider.create of a fleet host that fails", () => {
  it("keeps the typed error (name, host, step) and adds where the rollout stands", async () => {
    const port = await closedPort();
    const inputs = { ...args(port), rollout };
    await assert.rejects(provider.create!(inputs), (error: unknown) => {
      assert.ok(isConnectionError(error), `not a ConnectionError: ${String(error)}`);
      assert.equal(error.host, `alice@127.0.0.1:${port}`);
      assert.equal(error.step, "connect");
      assert.ok(error.message.startsWith(`alice@127.0.0.1:${port}: connect: `), error.message);
      assert.ok(error.message.endsWith(`\n  ${describeFailedHost(rollout)}`), error.message);
      return true;
    });
  });

  it("without a rollout the message is the host's alone", async () => {
    await assert.rejects(provider.create!(args(await closedPort())), (error: unknown) => {
      assert.ok(isConnectionError(error));
      assert.doesNotMatch(error.message, /fleet |untouched/);
      return true;
    });
  });
});

describe("RootlessDockerFleet", () => {
  it("gives every network its place in the waves, and refuses names the rollout cannot carry", async () => {
    const registered = new Map<string, Record<string, unknown>>();
    await pulumi.runtime.setMocks(
      {
        newResource: (mock) => {
          registered.set(mock.name, mock.inputs);
          return { id: `${mock.name}-id`, state: mock.inputs };
        },
        call: () => ({}),
      },
      "project",
      "stack",
      true,
    );
    // Loaded after the mocks are in place, as Pulumi's mock runtime needs.
    const { RootlessDockerFleet } = require("../../provider/fleet") as typeof import("../../provider/fleet");
    const fleet = new RootlessDockerFleet("edge", {
      defaults: { networkDriver: "pasta", connection: { user: "alice", password: "not-a-real-password" } },
      hosts: ["web1", "web2", "web3"].map((name) => ({ name, connection: { host: `${name}.example` } })),
      batchSize: 2,
    });
    await Promise.all(Object.values(fleet.networks).map((network) => new Promise((resolve) => network.urn.apply(resolve))));
    const waves = [["web1", "web2"], ["web3"]];
    for (const host of ["web1", "web2", "web3"]) assert.deepEqual(registered.get(`edge-${host}`)?.rollout, { fleet: "edge", host, waves });

    assert.throws(
      () => new RootlessDockerFleet("edge 2", { defaults: { networkDriver: "pasta" }, hosts: [{ name: "web1" }, { name: "wеb2" }] }),
      (error: unknown) => {
        assert.match(String(error), /\n  name: must be an ASCII name/);
        assert.match(String(error), /\n  hosts\[1\]\.name: must be an ASCII name/);
        return true;
      },
    );
  });
});
