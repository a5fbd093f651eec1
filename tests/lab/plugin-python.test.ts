/**
 * examples/python — a Pulumi Python program using the SDK generated from plugin/schema.json — run by the real
 * `pulumi` CLI (its Python programs started by the project's language host, with the `pulumi` package 3.248.0 from
 * PyPI in the program's virtualenv) against a real lab host: preview, up, a second up that changes nothing, a hand
 * edit that a plain `pulumi preview` names by property, the `import` resource option adopting the drop-in, and destroy
 * giving the original file back.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

process.env.RDL_LAB = "pluginpython";
import { labDown } from "../../lab/api";
import { assertCreatePreview, assertHandEditInPlainPreview, assertSecretConnection, bootExample, configureProviderConnection, diagnostics, exportedNetwork, networkId, ORIGINAL, type PluginExample } from "../helpers/plugin-example";
import { PROJECT_ROOT } from "../helpers/provider-host";
import { ensureTools } from "../../tools/pulumi/build";
import { generateSdks, pythonVirtualenv } from "../../tools/pulumi/sdk";

const EXAMPLE = join(PROJECT_ROOT, "examples", "python");
const STACK = "e2e-test";
const CLI = ["--non-interactive", "--stack", STACK];
const ADOPT_STACK = "e2e-test-adopt";

describe("examples/python through the real pulumi CLI, the generated Python SDK and the rootless-docker plugin", { timeout: 1_800_000 }, () => {
  let example: PluginExample;

  before(async () => {
    // The wheelhouse of the pulumi package, the SDK from the schema, the program's virtualenv from both.
    await ensureTools(["python"], { verbose: false, buildCommandPlugin: false, commandNeeded: false });
    await generateSdks(["python"]);
    await pythonVirtualenv(EXAMPLE);
    example = await bootExample(EXAMPLE, STACK);
  });
  after(async () => {
    example?.cleanup();
    await labDown();
  });

  it("preview shows the create and, attached to the resource, that Docker will restart", async (t) => {
    const out = await example.ok(["preview", ...CLI]);
    t.diagnostic(out);
    await assertCreatePreview(example, out);
  });

  it("up converges the host; the outputs say what runs", async () => {
    await example.ok(["up", "--yes", "--skip-preview", ...CLI]);
    const file = await example.dropIn();
    assert.ok(file.startsWith(ORIGINAL), file);
    assert.match(file, /DOCKERD_ROOTLESS_ROOTLESSKIT_NET=slirp4netns/);
    assert.match(await example.rootlesskit(), /--ipv6/);
    const outputs = JSON.parse(await example.ok(["stack", "output", "--json", ...CLI])) as Record<string, unknown>;
    assert.deepEqual(outputs, { networkDriverInEffect: "slirp4netns", ipv6InEffect: true, ipv6Reachable: true });
  });

  it("a second up changes nothing: no update, no restart", async () => {
    const before = await example.invocationId();
    const out = await example.ok(["up", "--yes", "--skip-preview", ...CLI]);
    assert.match(out, /2 unchanged/);
    assert.doesNotMatch(out, /restarted|updated/);
    assert.equal(await example.invocationId(), before);
    const check = await example.run(["preview", "--expect-no-changes", ...CLI]);
    assert.equal(check.exitCode, 0, check.stdout + check.stderr);
  });

  it("the `import` resource option adopts the drop-in with the host's inputs; the host is untouched", async (t) => {
    const adopt = ["--non-interactive", "--stack", ADOPT_STACK];
    await example.configure(ADOPT_STACK);
    await configureProviderConnection(example, ADOPT_STACK);
    await example.ok(["config", "set", ...adopt.slice(1), "importId", "--", networkId(example)]);
    const file = await example.dropIn();
    const invocation = await example.invocationId();
    const out = await example.ok(["up", "--yes", ...adopt]);
    t.diagnostic(out);
    assert.match(out, /= {2}rootless-docker:index:Network network imported/);
    // The program declares verify, which the host cannot show: the import is followed by an update of the state only.
    assert.match(out, /~ {2}rootless-docker:index:Network network updated \([^)]*\) \[diff: ~verify\]/);
    assert.match(out, /= 1 imported/);
    assert.doesNotMatch(out, /restarted/);
    const state = await exportedNetwork(example, ADOPT_STACK);
    assert.equal(state.id, networkId(example));
    assert.equal(state.inputs.networkDriver, "slirp4netns");
    assert.equal(state.inputs.ipv6, true);
    assertSecretConnection(state.outputs);
    assert.equal(await example.dropIn(), file, "import writes nothing");
    assert.equal(await example.invocationId(), invocation, "import restarts nothing");
    const check = await example.run(["preview", "--expect-no-changes", ...adopt]);
    assert.equal(check.exitCode, 0, check.stdout + check.stderr);
    // Forget the adopted copy without touching the host: the first stack still manages it.
    await example.ok(["stack", "rm", ADOPT_STACK, "--force", "--yes", "--non-interactive"]);
  });

  it("a hand edit of the drop-in shows in a plain `pulumi preview`, the property named with its level", async (t) => {
    t.diagnostic(await assertHandEditInPlainPreview(example, CLI));
    const detailed = await example.ok(["preview", "--diff", ...CLI]);
    t.diagnostic(detailed);
    assert.match(detailed, /~ networkDriver: "pasta" => "slirp4netns"/);
    await example.ok(["up", "--yes", "--skip-preview", ...CLI]);
    assert.match(await example.dropIn(), /DOCKERD_ROOTLESS_ROOTLESSKIT_NET=slirp4netns/);
  });

  it("a program error is shown once, with Python's own message, and fails the preview", async () => {
    await example.ok(["stack", "init", "e2e-unconfigured", "--non-interactive"]);
    const result = await example.run(["preview", "--non-interactive", "--stack", "e2e-unconfigured"]);
    assert.notEqual(result.exitCode, 0);
    const output = result.stdout + result.stderr;
    // Once in the resource's diagnostics (the progress line above them shows the same error as it happens).
    assert.equal(diagnostics(output).match(/Missing required configuration variable 'rootless-docker-python:host'/g)?.length, 1, output);
    assert.doesNotMatch(output, /Program exited with non-zero exit code/, "the host bails: the error was already reported");
    await example.ok(["stack", "rm", "e2e-unconfigured", "--yes", "--non-interactive"]);
  });

  it("destroy gives back the drop-in as it was before", async () => {
    await example.ok(["destroy", "--yes", "--skip-preview", ...CLI]);
    assert.equal(await example.dropIn(), ORIGINAL);
  });
});
