/**
 * examples/go — a Pulumi Go program compiled against the SDK generated from plugin/schema.json — built by the
 * project's language host (`go build`, modules from the cache only) and run by the real `pulumi` CLI against a real
 * lab host: preview names the create and the restart, up converges, nothing is left to change, a hand edit shows in a
 * plain `pulumi preview` with the property named, destroy gives the original file back.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

process.env.RDL_LAB = "plugingo";
import { labDown } from "../../lab/api";
import { assertCreatePreview, assertHandEditInPlainPreview, bootExample, ORIGINAL, type PluginExample } from "../helpers/plugin-example";
import { PROJECT_ROOT } from "../helpers/provider-host";
import { ensureTools, goProgramEnvironment } from "../../tools/pulumi/build";
import { generateSdks } from "../../tools/pulumi/sdk";

const EXAMPLE = join(PROJECT_ROOT, "examples", "go");
const STACK = "e2e-test";
const CLI = ["--non-interactive", "--stack", STACK];

describe("examples/go through the real pulumi CLI, the generated Go SDK and the rootless-docker plugin", { timeout: 1_800_000 }, () => {
  let example: PluginExample;

  before(async () => {
    await ensureTools(["go"], { verbose: false, buildCommandPlugin: false, commandNeeded: false });
    await generateSdks(["go"]);
    example = await bootExample(EXAMPLE, STACK, goProgramEnvironment());
  });
  after(async () => {
    example?.cleanup();
    await labDown();
  });

  it("the program compiles and preview shows the create and, attached to the resource, that Docker will restart", async (t) => {
    const out = await example.ok(["preview", ...CLI]);
    t.diagnostic(out);
    await assertCreatePreview(example, out);
  });

  it("up converges the host and leaves nothing to change", async () => {
    await example.ok(["up", "--yes", "--skip-preview", ...CLI]);
    assert.match(await example.dropIn(), /DOCKERD_ROOTLESS_ROOTLESSKIT_NET=slirp4netns/);
    assert.match(await example.rootlesskit(), /--ipv6/);
    const outputs = JSON.parse(await example.ok(["stack", "output", "--json", ...CLI])) as Record<string, unknown>;
    assert.deepEqual(outputs, { networkDriverInEffect: "slirp4netns", ipv6InEffect: true, ipv6Reachable: true });
    const check = await example.run(["preview", "--expect-no-changes", ...CLI]);
    assert.equal(check.exitCode, 0, check.stdout + check.stderr);
  });

  it("a hand edit of the drop-in shows in a plain `pulumi preview`, the property named with its level", async (t) => {
    t.diagnostic(await assertHandEditInPlainPreview(example, CLI));
  });

  it("destroy gives back the drop-in as it was before, hand edit or not", async () => {
    await example.ok(["destroy", "--yes", "--skip-preview", ...CLI]);
    assert.equal(await example.dropIn(), ORIGINAL);
  });
});
