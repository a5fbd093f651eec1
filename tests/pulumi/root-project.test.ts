/**
 * The repository's own Pulumi project (Pulumi.yaml at the top) under the real engine: with no hosts in stack config it
 * manages the lab's hosts, as the README says; a changed `dropInName` replaces each resource (the old file removed,
 * the new one written); destroy leaves hosts that had no drop-in without one.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { LabHost } from "../../lab/api";
import { hostState, userCommand, DROP_IN } from "../helpers/host-state";
import { CHECKOUT, PulumiStack } from "../helpers/pulumi";

process.env.RDL_LAB = "rdlroot";
// Loaded after RDL_LAB is set: the lab picks its instance from the environment.
const { labDown, labUp } = require("../../lab/api") as typeof import("../../lab/api");

const RENAMED = DROP_IN.replace(/override\.conf$/, "50-network.conf");

async function exists(lab: LabHost, path: string): Promise<boolean> {
  return (await userCommand(lab, `if [ -e ${path} ]; then echo yes; else echo no; fi`)).trim() === "yes";
}

describe("pulumi up of the root project against the lab's hosts", { timeout: 1_800_000 }, () => {
  let hosts: LabHost[];
  let stack: PulumiStack;

  before(async () => {
    await labDown(); // leftovers of an interrupted run
    hosts = await labUp({ hosts: 2, profile: "trixie" });
    // The program reads the lab named by RDL_LAB (with this checkout's suffix), as a person's `npm run lab` would.
    stack = new PulumiStack(CHECKOUT, "e2e-root", { env: { RDL_LAB: "rdlroot" } });
    await stack.init({});
  });

  after(async () => {
    await stack?.remove();
    await labDown();
  });

  it("with no hosts configured, up converges every lab host with verified IPv6", async () => {
    await stack.ok(["up", "--yes"]);
    const outputs = await stack.outputs();
    const verifications = outputs.verifications as Record<string, { reachable: boolean }>;
    for (const host of hosts) {
      assert.equal(verifications[host.name]?.reachable, true, `${host.name}: ${JSON.stringify(outputs.verifications)}`);
      const state = await hostState(host);
      assert.match(state.dropIn ?? "", /ROOTLESSKIT_NET=slirp4netns/);
      assert.match(state.rootlesskit, /--ipv6/);
    }
  });

  it("a changed dropInName replaces each resource: the old file removed, the new one written", async () => {
    for (const [path, value, type] of [
      ["defaults.networkDriver", "slirp4netns", "string"],
      ["defaults.ipv6", "true", "bool"],
      ["defaults.verify.required", "true", "bool"],
      ["defaults.dropInName", "50-network.conf", "string"],
    ]) {
      await stack.ok(["config", "set", "--path", path!, value!, "--type", type!]);
    }
    const preview = await stack.ok(["preview", "--diff"]);
    assert.match(preview.stdout, /\+-pulumi-nodejs:dynamic:RootlessDockerNetwork: \(replace\)/, preview.stdout);
    await stack.ok(["up", "--yes"]);
    for (const host of hosts) {
      assert.equal(await exists(host, DROP_IN), false, `${host.name}: the old drop-in is still there`);
      assert.match(await userCommand(host, `cat ${RENAMED}`), /ROOTLESSKIT_NET=slirp4netns/);
      assert.match((await hostState(host)).rootlesskit, /--ipv6/);
    }
  });

  it("destroy leaves no drop-in on hosts that had none", async () => {
    await stack.ok(["destroy", "--yes"]);
    for (const host of hosts) {
      assert.equal(await exists(host, DROP_IN), false, host.name);
      assert.equal(await exists(host, RENAMED), false, host.name);
      assert.doesNotMatch((await hostState(host)).rootlesskit, /--ipv6/);
    }
  });
});
