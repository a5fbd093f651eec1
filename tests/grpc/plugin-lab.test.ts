/**
 * The `rootless-docker` plugin against a real lab host, driven over gRPC as the engine drives it, with a real
 * Engine log service: the connection from the provider's configuration, a detailed diff naming the property a hand
 * edit changed, warnings and the restart notice in the engine's log attached to the resource, import by id, and a
 * delete that gives back the drop-in as it was. Assertions read the host.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";

process.env.RDL_LAB = "pluginlab";
import { labDown, labUp, type LabHost } from "../../lab/api";
import { DROP_IN, userCommand as onHost } from "../helpers/host-state";
import { assertInputsInSync, assertInputsRemoved } from "../helpers/in-sync";
import { labInputs } from "../helpers/lab-spec";
import { isSecret, secret, startEngineLog, startPlugin, type EngineLog, type PluginHost } from "../helpers/plugin-host";

/** Someone's drop-in before we came: a comment and a variable that are not ours stay byte for byte. */
const ORIGINAL = "[Service]\n# set by hand, keep\nEnvironment=FOO=bar\n";

describe("the rootless-docker plugin on a real host", { timeout: 600_000 }, () => {
  let host: LabHost;
  let engine: EngineLog;
  let plugin: PluginHost;
  let id: string;
  let state: Record<string, unknown>;
  // The connection lives in the provider's configuration only: the Network names none.
  const inputs = { networkDriver: "slirp4netns", verify: { enabled: false } };
  const messagesSince = (start: number) => engine.messages.slice(start);

  before(async () => {
    await labDown();
    // A closed ping_group_range is a capability warning the engine must show.
    [host] = await labUp({ hosts: 1, pingGroupRange: "closed" });
    await onHost(host, `mkdir -p ${DROP_IN.replace(/\/[^/]+$/, "")} && printf '%s' '${ORIGINAL}' > ${DROP_IN}`);
    engine = await startEngineLog();
    plugin = await startPlugin({ engineAddress: engine.address });
    const configured = await plugin.configure({
      connection: secret({ host: host.address, port: host.port, user: host.user, privateKey: readFileSync(host.privateKeyPath, "utf8"), hostKey: host.hostPublicKey }),
    });
    assert.deepEqual(configured, { acceptSecrets: true, supportsPreview: true });
  });
  after(async () => {
    await plugin?.stop();
    await engine?.stop();
    await labDown();
  });

  it("a preview of the create sends the capability warning and the restart notice to the engine, attached to the resource", async () => {
    const start = engine.messages.length;
    // ICMP checks are what a closed ping_group_range breaks.
    // ipv6 changes what runs (the host already runs the script's defaults), so this create would restart Docker.
    const verified = { ...inputs, ipv6: true, verify: { targets: [{ address: host.target.ipv6, tcpPort: host.target.ipv6TcpPort, icmp: true }] } };
    const checked = await plugin.check({}, verified);
    assert.deepEqual(checked.failures, []);
    const preview = await plugin.create(verified, { preview: true });
    assert.equal(preview.id, "");
    const messages = messagesSince(start);
    assert.ok(messages.every((message) => message.urn === plugin.urn()), JSON.stringify(messages));
    assert.ok(messages.some((message) => message.severity === "warning" && /ping_group_range/.test(message.message)), JSON.stringify(messages));
    // With the reason, and the same actions as the CLI's plan (the files, daemon-reload, restart).
    assert.ok(messages.some((message) => message.severity === "warning" && /will restart docker\.service \(ipv6, extraFlags \(DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS\): running no flags, declared --ipv6\)/.test(message.message)), JSON.stringify(messages));
    const actions = messages.find((message) => message.severity === "info" && /: the apply will:\n/.test(message.message))?.message ?? "";
    assert.match(actions, new RegExp(`\n  writes ${DROP_IN.replace(/\./g, "\\.")} \\(drop-in, mode 644\\)\n  daemon-reload: yes \\(`), JSON.stringify(messages));
    assert.match(actions, /\n  restart docker\.service: yes \(/);
    assert.equal(await onHost(host, `cat ${DROP_IN}`), ORIGINAL, "a preview writes nothing");
  });

  it("Create applies, keeps the connection secret and asks the engine to refresh before each update", async () => {
    const created = await plugin.create(inputs);
    await assertInputsInSync(labInputs(host, inputs));
    id = created.id;
    state = created.properties;
    assert.equal(id, `dev@${host.address}:${host.port}/docker.service/override.conf`);
    assert.equal(created.refreshBeforeUpdate, true);
    assert.ok(isSecret(state.connection), "connection is a secret output");
    assert.equal(state.networkDriverInEffect, "slirp4netns");
    const file = await onHost(host, `cat ${DROP_IN}`);
    assert.match(file, /# set by hand, keep\nEnvironment=FOO=bar\n/);
    assert.match(file, /DOCKERD_ROOTLESS_ROOTLESSKIT_NET=slirp4netns/);
    const again = await plugin.diff(id, state, inputs);
    assert.equal(again.changes, "none");
    assert.deepEqual(again.detailedDiff, {});
  });

  it("a hand edit of the drop-in shows as a detailed diff on networkDriver, with its level in the engine's log", async () => {
    await onHost(host, `sed -i 's/ROOTLESSKIT_NET=slirp4netns/ROOTLESSKIT_NET=pasta/' ${DROP_IN}`);
    const start = engine.messages.length;
    const diff = await plugin.diff(id, state, inputs);
    assert.equal(diff.changes, "some");
    assert.equal(diff.hasDetailedDiff, true);
    assert.deepEqual(diff.detailedDiff, { networkDriver: { kind: "update", inputDiff: true } });
    const info = messagesSince(start).find((message) => message.severity === "info");
    assert.ok(info && /file: networkDriver \(DOCKERD_ROOTLESS_ROOTLESSKIT_NET\): pasta → slirp4netns/.test(info.message), JSON.stringify(messagesSince(start)));

    // The refresh the engine runs first: inputs mirror the host (the preview's old value), outputs keep what was declared.
    const read = await plugin.read(id, state, inputs);
    assert.equal(read.inputs?.networkDriver, "pasta");
    assert.equal(read.properties.networkDriver, "slirp4netns");
    assert.equal("connection" in read.inputs!, false, "the connection came from the provider configuration, not the program");
    assert.equal(read.refreshBeforeUpdate, true);

    const updated = await plugin.update(id, read.properties, inputs);
    await assertInputsInSync(labInputs(host, inputs));
    state = updated.properties;
    assert.match(await onHost(host, `cat ${DROP_IN}`), /DOCKERD_ROOTLESS_ROOTLESSKIT_NET=slirp4netns/);
    assert.equal((await plugin.diff(id, state, inputs)).changes, "none");
  });

  it("import by id adopts the drop-in: inputs mirror the host, the credentials come from the provider configuration", async () => {
    const imported = await plugin.read(id, {});
    assert.equal(imported.id, id);
    assert.deepEqual(imported.inputs, { connection: { host: host.address, user: "dev" }, networkDriver: "slirp4netns" }, "the id's host; defaults are left out");
    assert.ok(isSecret(imported.properties.connection));
    assert.equal(imported.properties.dropInPath, DROP_IN);
    const checked = await plugin.check({}, imported.inputs!);
    assert.deepEqual(checked.failures, []);
    assert.equal((await plugin.diff(id, imported.properties, imported.inputs!)).changes, "none");
  });

  it("Delete gives back the drop-in as it was before the plugin came", async () => {
    await plugin.delete(id, state);
    await assertInputsRemoved(labInputs(host, inputs));
    assert.equal(await onHost(host, `cat ${DROP_IN}`), ORIGINAL);
  });
});
