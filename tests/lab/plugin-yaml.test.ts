/**
 * examples/yaml — a Pulumi YAML program, no TypeScript anywhere — run by the real `pulumi` CLI with the
 * `rootless-docker` plugin against a real lab host: preview, up, a second up that changes nothing, a hand edit that
 * a plain `pulumi preview` names by property, `pulumi import` and the `import` resource option adopting the drop-in,
 * and destroy giving the original file back. Assertions read the host, the state and what the CLI printed.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

process.env.RDL_LAB = "pluginyaml";
import { labDown } from "../../lab/api";
import { DROP_IN, userCommand } from "../helpers/host-state";
import { assertCreatePreview, assertSecretConnection, bootExample, configureProviderConnection, exportedNetwork, networkId, ORIGINAL, PluginExample } from "../helpers/plugin-example";
import { PROJECT_ROOT } from "../helpers/provider-host";
import { ensureTools } from "../../tools/pulumi/build";

const EXAMPLE = join(PROJECT_ROOT, "examples", "yaml");
const STACK = "e2e-test";
const ADOPT_STACK = "e2e-test-adopt";

describe("examples/yaml through the real pulumi CLI and the rootless-docker plugin", { timeout: 900_000 }, () => {
  let example: PluginExample;
  const id = () => networkId(example);

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
    await configureProviderConnection(example, ADOPT_STACK);
    const out = await example.ok(["import", "rootless-docker:index:Network", "adopted", id(), "--yes", "--protect=false", "--non-interactive", "--stack", ADOPT_STACK]);
    t.diagnostic(out);
    assert.match(out, /= 1 imported/);
    assert.match(out, /type: rootless-docker:Network\n\s+properties:\n\s+connection:\n\s+host: \S+\n\s+user: dev\n\s+ipv6: true\n\s+networkDriver: slirp4netns\n/);
    assert.doesNotMatch(out, /privateKey|BEGIN OPENSSH/, "no credential in the generated code");
    // Forget the adopted copy without touching the host: the first stack still manages it.
    await example.ok(["stack", "rm", ADOPT_STACK, "--force", "--yes", "--non-interactive"]);
  });

  it("the `import` resource option adopts the drop-in: inputs as on the host, connection secret, host untouched", async (t) => {
    const adopting = new PluginExample(mkdtempSync(join(tmpdir(), "rdn-yaml-adopt-")), example.host);
    try {
      writeFileSync(join(adopting.dir, "Pulumi.yaml"), adoptProgram(id()));
      await adopting.ok(["stack", "init", ADOPT_STACK, "--non-interactive"]);
      await adopting.ok(["config", "set", "--stack", ADOPT_STACK, "host", "--", example.host.address]);
      await configureProviderConnection(adopting, ADOPT_STACK);
      const file = await example.dropIn();
      const invocation = await example.invocationId();

      // The program says MTU 1500, the host has 65520: the engine imports, then plans the update to 1500.
      await adopting.ok(["config", "set", "--stack", ADOPT_STACK, "mtu", "1500"]);
      const mismatch = await adopting.ok(["preview", "--non-interactive", "--stack", ADOPT_STACK]);
      t.diagnostic(mismatch);
      assert.match(mismatch, /= {2}rootless-docker:index:Network network import/);
      assert.match(mismatch, /\[diff: ~mtu\]/);
      assert.match(mismatch, /file: mtu \(DOCKERD_ROOTLESS_ROOTLESSKIT_MTU\): 65520 → 1500/);

      await adopting.ok(["config", "set", "--stack", ADOPT_STACK, "mtu", "65520"]);
      const out = await adopting.ok(["up", "--yes", "--non-interactive", "--stack", ADOPT_STACK]);
      t.diagnostic(out);
      assert.match(out, /= {2}rootless-docker:index:Network network import/);
      assert.match(out, /= 1 imported/);
      assert.doesNotMatch(out, /to update|updated/);
      const state = await exportedNetwork(adopting, ADOPT_STACK);
      assert.equal(state.id, id());
      assert.deepEqual(state.inputs, { connection: { host: example.host.address, user: "dev" }, ipv6: true, networkDriver: "slirp4netns" });
      assert.match(file, /DOCKERD_ROOTLESS_ROOTLESSKIT_NET=slirp4netns/);
      assertSecretConnection(state.outputs);
      assert.equal(await example.dropIn(), file, "import writes nothing");
      assert.equal(await example.invocationId(), invocation, "import restarts nothing");
      const check = await adopting.run(["preview", "--non-interactive", "--expect-no-changes", "--stack", ADOPT_STACK]);
      assert.equal(check.exitCode, 0, check.stdout + check.stderr);
      // Forget the adopted copy without touching the host: the first stack still manages it.
      await adopting.ok(["stack", "rm", ADOPT_STACK, "--force", "--yes", "--non-interactive"]);
    } finally {
      adopting.cleanup();
      rmSync(adopting.dir, { recursive: true, force: true });
    }
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

/** A YAML program that adopts the Network by id: the host and what it should run in the program, the credentials in
 * the provider's configuration (the engine reads an import before the program's inputs reach the plugin). */
function adoptProgram(importId: string): string {
  return `name: rootless-docker-yaml-adopt
runtime: yaml
plugins:
  providers:
    - name: rootless-docker
      path: ${join(PROJECT_ROOT, "plugin")}
config:
  host:
    type: string
  mtu:
    type: integer
resources:
  network:
    type: rootless-docker:index:Network
    properties:
      connection:
        host: \${host}
        user: dev
      networkDriver: slirp4netns
      mtu: \${mtu}
      ipv6: true
    options:
      import: ${importId}
`;
}
