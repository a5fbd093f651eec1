/**
 * examples/yaml — a Pulumi YAML program, no TypeScript anywhere — run by the real `pulumi` CLI with the
 * `rootless-docker` plugin against a real lab host: preview, up, a second up that changes nothing, a hand edit that
 * a plain `pulumi preview` names by property, `pulumi import` adopting the drop-in, and destroy giving the original
 * file back. Assertions read the host and what the CLI printed.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

process.env.RDL_LAB = "pluginyaml";
import { labDown } from "../../lab/api";
import { DROP_IN, userCommand } from "../helpers/host-state";
import { assertCreatePreview, bootExample, ORIGINAL, type PluginExample } from "../helpers/plugin-example";
import { PROJECT_ROOT } from "../helpers/provider-host";
import { ensureTools } from "../../tools/pulumi/build";

const EXAMPLE = join(PROJECT_ROOT, "examples", "yaml");
const STACK = "e2e-test";
const ADOPT_STACK = "e2e-test-adopt";

describe("examples/yaml through the real pulumi CLI and the rootless-docker plugin", { timeout: 900_000 }, () => {
  let example: PluginExample;
  const id = () => `dev@${example.host.address}:${example.host.port}/docker.service/override.conf`;

  before(async () => {
    // The YAML language host goes next to pulumi, where the engine finds its bundled plugins.
    await ensureTools(["yaml"], { verbose: false, buildCommandPlugin: false, commandNeeded: false });
    example = await bootExample(EXAMPLE, STACK);
  });
  after(async () => {
    example?.cleanup();
    await labDown();
  });

  it("preview shows the create and, attached to the resource, that Docker will restart", async (t) => {
    const out = await example.ok(["preview", "--non-interactive", "--stack", STACK]);
    t.diagnostic(out);
    await assertCreatePreview(example, out);
  });

  it("up converges the host; the outputs say what runs", async () => {
    await example.ok(["up", "--yes", "--skip-preview", "--non-interactive", "--stack", STACK]);
    const file = await example.dropIn();
    assert.ok(file.startsWith(ORIGINAL), file);
    assert.match(file, /DOCKERD_ROOTLESS_ROOTLESSKIT_NET=slirp4netns/);
    assert.match(await example.rootlesskit(), /--ipv6/);
    const outputs = JSON.parse(await example.ok(["stack", "output", "--json", "--stack", STACK])) as Record<string, unknown>;
    assert.deepEqual(outputs, { networkDriverInEffect: "slirp4netns", ipv6InEffect: true, ipv6Reachable: true });
  });

  it("a second up changes nothing: no update, no restart", async () => {
    const before = await example.invocationId();
    const out = await example.ok(["up", "--yes", "--skip-preview", "--non-interactive", "--stack", STACK]);
    assert.match(out, /2 unchanged/);
    assert.doesNotMatch(out, /restarted|updated/);
    assert.equal(await example.invocationId(), before);
    const check = await example.run(["preview", "--non-interactive", "--expect-no-changes", "--stack", STACK]);
    assert.equal(check.exitCode, 0, check.stdout + check.stderr);
  });

  it("pulumi import adopts the drop-in by id, with the credentials from the provider configuration", async (t) => {
    await example.configure(ADOPT_STACK);
    await example.ok(["config", "set", "--stack", ADOPT_STACK, "--path", "rootless-docker:connection.hostKey", "--", example.host.hostPublicKey]);
    await example.ok(["config", "set", "--stack", ADOPT_STACK, "--secret", "--path", "rootless-docker:connection.privateKey", "--", readFileSync(example.host.privateKeyPath, "utf8")]);
    const out = await example.ok(["import", "rootless-docker:index:Network", "adopted", id(), "--yes", "--protect=false", "--non-interactive", "--stack", ADOPT_STACK]);
    t.diagnostic(out);
    assert.match(out, /= 1 imported/);
    assert.match(out, /type: rootless-docker:Network\n\s+properties:\n\s+connection:\n\s+host: \S+\n\s+user: dev\n\s+ipv6: true\n\s+networkDriver: slirp4netns\n/);
    assert.doesNotMatch(out, /privateKey|BEGIN OPENSSH/, "no credential in the generated code");
    // Forget the adopted copy without touching the host: the first stack still manages it.
    await example.ok(["stack", "rm", ADOPT_STACK, "--force", "--yes", "--non-interactive"]);
  });

  it("a hand edit of the drop-in shows in a plain `pulumi preview`, the property named with its level", async (t) => {
    await userCommand(example.host, `sed -i 's/ROOTLESSKIT_NET=slirp4netns/ROOTLESSKIT_NET=pasta/' ${DROP_IN}`);
    const plain = await example.ok(["preview", "--non-interactive", "--stack", STACK]);
    t.diagnostic(plain);
    assert.match(plain, /~ {2}rootless-docker:index:Network network update \[diff: ~networkDriver\]/);
    assert.match(plain, /file: networkDriver \(DOCKERD_ROOTLESS_ROOTLESSKIT_NET\): pasta → slirp4netns/);
    assert.match(plain, /~ 1 to update/);
    const detailed = await example.ok(["preview", "--non-interactive", "--diff", "--stack", STACK]);
    t.diagnostic(detailed);
    assert.match(detailed, /~ networkDriver: "pasta" => "slirp4netns"/);
    const check = await example.run(["preview", "--non-interactive", "--expect-no-changes", "--stack", STACK]);
    assert.notEqual(check.exitCode, 0, "drift fails --expect-no-changes");
    await example.ok(["up", "--yes", "--skip-preview", "--non-interactive", "--stack", STACK]);
    assert.match(await example.dropIn(), /DOCKERD_ROOTLESS_ROOTLESSKIT_NET=slirp4netns/);
  });

  it("destroy gives back the drop-in as it was before", async () => {
    await example.ok(["destroy", "--yes", "--skip-preview", "--non-interactive", "--stack", STACK]);
    assert.equal(await example.dropIn(), ORIGINAL);
  });
});
