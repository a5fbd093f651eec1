/**
 * The `rootless-docker` plugin executable over gRPC, without a host: what the engine learns about it (version,
 * schema, what it accepts), Check, and the calls that must not connect anywhere (unknown values in a preview,
 * a malformed import id).
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { UNKNOWN } from "../../provider/core/schema";
import { PROJECT_ROOT } from "../helpers/provider-host";
import { secret, startPlugin, type PluginHost } from "../helpers/plugin-host";

const KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
// TEST-NET-1: nothing answers there, so a call that tried to connect would fail.
const connection = { host: "192.0.2.1", user: "dev", privateKey: KEY, dialErrorLimit: 1, perDialTimeout: 1 };

describe("the rootless-docker plugin over gRPC", { timeout: 60_000 }, () => {
  let plugin: PluginHost;
  before(async () => {
    plugin = await startPlugin();
  });
  after(() => plugin?.stop());

  it("reports the package's version and serves the generated schema", async () => {
    const { version } = JSON.parse(readFileSync(join(PROJECT_ROOT, "package.json"), "utf8")) as { version: string };
    assert.equal(await plugin.getPluginInfo(), version);
    assert.deepEqual(await plugin.getSchema(), JSON.parse(readFileSync(join(PROJECT_ROOT, "plugin", "schema.json"), "utf8")));
  });

  it("accepts secrets and supports preview", async () => {
    assert.deepEqual(await plugin.configure({}), { acceptSecrets: true, supportsPreview: true });
  });

  it("Check names every problem, a missing connection with where to set it, and keeps secret markers", async () => {
    const failed = await plugin.check({}, { networkDriver: "pasta", portDriver: "builtin", rollout: { fleet: "f", host: "h", waves: [["h"]] } });
    const byProperty = Object.fromEntries(failed.failures.map((failure) => [failure.property, failure.reason]));
    assert.match(byProperty.connection, /provider's configuration \(rootless-docker:connection\)/);
    assert.match(byProperty.portDriver, /does not work with networkDriver "pasta"/);
    assert.match(byProperty.rollout, /is not an input of rootless-docker:index:Network/);

    const news = { connection: secret(connection), networkDriver: "slirp4netns" };
    const checked = await plugin.check({}, news);
    assert.deepEqual(checked.failures, []);
    assert.deepEqual(checked.inputs, news);
  });

  it("a preview with values not known yet neither connects nor fails", async () => {
    const news = { connection: secret({ ...connection, host: UNKNOWN }), networkDriver: "pasta" };
    const created = await plugin.create(news, { preview: true });
    assert.deepEqual(created.properties, news);
    const olds = { connection, networkDriver: "pasta" };
    const diff = await plugin.diff("dev@192.0.2.1:22/docker.service/override.conf", olds, { ...olds, networkDriver: UNKNOWN });
    assert.equal(diff.changes, "some");
  });

  it("a change of host is a replacement named by property, the new drop-in created first on another host", async () => {
    const olds = { connection, networkDriver: "pasta" };
    const diff = await plugin.diff("dev@192.0.2.1:22/docker.service/override.conf", olds, { ...olds, connection: { ...connection, host: "192.0.2.2" } });
    assert.deepEqual(diff.detailedDiff, { "connection.host": { kind: "update-replace", inputDiff: true } });
    assert.deepEqual(diff.replaces, ["connection.host"]);
    assert.equal(diff.deleteBeforeReplace, false);
    const sameHost = await plugin.diff("dev@192.0.2.1:22/docker.service/override.conf", olds, { ...olds, dropInName: "50-net.conf" });
    assert.deepEqual(sameHost.replaces, ["dropInName"]);
    assert.equal(sameHost.deleteBeforeReplace, true);
  });

  it("an import id that is not user@host:port/unit/dropInName fails with the expected form", async () => {
    await assert.rejects(plugin.read("192.0.2.1", {}), (error: Error) => /is not user@host:port\/unit\/dropInName/.test(error.message));
  });
});
