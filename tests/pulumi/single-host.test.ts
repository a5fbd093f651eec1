/**
 * The real Pulumi engine (the built `pulumi` CLI, through `npm run pulumi`'s runner) on a real lab host:
 * examples/single-host as written, from `up` through drift, repair and `destroy`; then a program whose connection
 * host is another resource's output. What is asserted is what the host runs and what `pulumi` printed.
 */
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { LabHost } from "../../lab/api";
import { hostState, startFrom, userCommand, DROP_IN, type HostState } from "../helpers/host-state";
import { CHECKOUT, PulumiStack } from "../helpers/pulumi";

process.env.RDL_LAB = "rdlpulumi";
// Loaded after RDL_LAB is set: the lab picks its instance from the environment.
const { labDown, labStatus, labUp } = require("../../lab/api") as typeof import("../../lab/api");

/** What the drift outputs are saved as, for the README's drift section. */
const OUTPUT_DIR = join(CHECKOUT, "dist", "pulumi-e2e-output");

/** A drop-in someone wrote by hand before Pulumi: ours must keep it byte for byte and give it back on destroy. */
const ORIGINAL_DROP_IN = "# written by hand before Pulumi managed this host\r\n[Service]\r\nEnvironment=\"LAB_NOTE=kept\"\r\n";

async function invocationId(lab: LabHost): Promise<string> {
  return (await userCommand(lab, "systemctl --user show -p InvocationID --value docker")).trim();
}

function save(name: string, text: string): void {
  mkdirSync(OUTPUT_DIR, { recursive: true });
  writeFileSync(join(OUTPUT_DIR, name), text);
}

describe("pulumi on examples/single-host against a lab host", { timeout: 1_800_000 }, () => {
  let lab: LabHost;
  let original: HostState;
  let stack: PulumiStack;
  let privateKey: string;

  before(async () => {
    await labDown(); // leftovers of an interrupted run
    [lab] = await labUp({ hosts: 1, profile: "trixie" });
    original = await startFrom(lab!, ORIGINAL_DROP_IN);
    privateKey = readFileSync(lab!.privateKeyPath, "utf8");
    stack = new PulumiStack(join(CHECKOUT, "examples", "single-host"), "e2e-single-host");
    await stack.init(
      {
        host: lab!.address,
        user: lab!.user,
        hostKey: lab!.hostPublicKey,
        verifyTarget: lab!.target.ipv6,
        verifyTcpPort: String(lab!.target.ipv6TcpPort),
        // Trixie's RootlessKit 2.0.2 starts pasta without IPv6.
        pastaIpv6Compat: "true",
      },
      { privateKey },
    );
  });

  after(async () => {
    await stack?.remove();
  });

  let converged: { invocation: string; dropIn: string | null };

  it("pulumi up converges the host and exports verified reachability", async () => {
    await stack.ok(["up", "--yes"]);
    const outputs = await stack.outputs();
    const verification = outputs.verification as { reachable: boolean; diagnosis: string };
    assert.equal(verification.reachable, true, JSON.stringify(verification));
    const state = await hostState(lab);
    assert.match(state.rootlesskit, /--net=pasta/);
    assert.match(state.rootlesskit, /--ipv6/);
    assert.ok(state.dropIn?.startsWith(ORIGINAL_DROP_IN.split("\r\n")[0]!), `the hand-written lines are gone:\n${state.dropIn}`);
    assert.match(state.dropIn!, /LAB_NOTE=kept/);
    converged = { invocation: await invocationId(lab), dropIn: state.dropIn };
  });

  it("a second pulumi up changes nothing and does not restart; preview --expect-no-changes exits 0", async () => {
    const up = await stack.ok(["up", "--yes", "--expect-no-changes"]);
    assert.doesNotMatch(up.stdout, /updated|created|deleted/, up.stdout);
    assert.equal(await invocationId(lab), converged.invocation, "the second up restarted Docker");
    assert.equal((await hostState(lab)).dropIn, converged.dropIn);
    await stack.ok(["preview", "--expect-no-changes"]);
  });

  it("neither the state file nor stack export holds the private key; only --show-secrets shows it", async () => {
    const body = privateKey.split("\n").filter((line) => line !== "" && !line.startsWith("-----")).join("");
    const forbidden = [privateKey.trim(), body, Buffer.from(privateKey).toString("base64"), ...privateKey.split("\n").filter((line) => line.length > 40)];
    const exported = (await stack.ok(["stack", "export"])).stdout;
    for (const [what, text] of [["state file", stack.stateFile()], ["pulumi stack export", exported]] as const) {
      for (const secret of forbidden) assert.ok(!text.includes(secret), `${what} contains the private key (or a line or base64 of it)`);
    }
    // Pulumi's marker of an encrypted secret value.
    assert.match(exported, /"connection":\s*\{\s*"4dabf18193072939515e22adb298388d"/, "connection is not a secret in the state");
    // The decrypted connection is a JSON string inside the JSON export: look for one line of the key's body.
    const shown = (await stack.ok(["stack", "export", "--show-secrets"])).stdout;
    const keyLine = privateKey.split("\n").find((line) => line.length > 40)!;
    assert.ok(shown.includes(keyLine), "--show-secrets does not show the key: the check above proves nothing");
  });

  it("a hand edit of the drop-in: preview --refresh --expect-no-changes fails naming the property and both values", async () => {
    await userCommand(lab, `sed -i 's/ROOTLESSKIT_NET=pasta/ROOTLESSKIT_NET=slirp4netns/' ${DROP_IN}`);
    const detailed = await stack.run(["preview", "--refresh", "--diff", "--expect-no-changes"]);
    save("preview-refresh-diff.txt", detailed.stdout + detailed.stderr);
    assert.notEqual(detailed.code, 0, detailed.stdout);
    assert.match(detailed.stdout, /~ networkDriver\s*: "slirp4netns" => "pasta"/, detailed.stdout);

    const summary = await stack.run(["preview", "--refresh", "--expect-no-changes"]);
    save("preview-refresh.txt", summary.stdout + summary.stderr);
    assert.notEqual(summary.code, 0, summary.stdout);
    assert.match(summary.stdout, /docker-network update \[diff: [^\]]*networkDriver/, summary.stdout);

    // Without --refresh the engine diffs against the state, which still says pasta; our diff reads the host.
    const plain = await stack.run(["preview", "--diff"]);
    save("preview-plain-diff.txt", plain.stdout + plain.stderr);
    assert.equal(plain.code, 0, plain.stdout + plain.stderr);
    assert.match(plain.stdout, /~ pulumi-nodejs:dynamic:RootlessDockerNetwork: \(update\)/, plain.stdout);
    const plainSummary = await stack.run(["preview"]);
    save("preview-plain.txt", plainSummary.stdout + plainSummary.stderr);
    assert.match(plainSummary.stdout, /~ {2}pulumi-nodejs:dynamic:RootlessDockerNetwork docker-network update/, plainSummary.stdout);
  });

  it("pulumi refresh --yes then pulumi up repair the drift", async () => {
    await stack.ok(["refresh", "--yes"]);
    await stack.ok(["up", "--yes"]);
    const state = await hostState(lab);
    assert.match(state.dropIn!, /ROOTLESSKIT_NET=pasta/);
    assert.match(state.rootlesskit, /--net=pasta/);
    await stack.ok(["preview", "--refresh", "--expect-no-changes"]);
  });

  it("pulumi destroy gives back the original drop-in byte for byte, restarting because what runs changes", async () => {
    const before = await invocationId(lab);
    await stack.ok(["destroy", "--yes"]);
    const state = await hostState(lab);
    assert.equal(state.dropIn, ORIGINAL_DROP_IN);
    assert.equal(state.rootlesskit, original.rootlesskit);
    assert.notEqual(await invocationId(lab), before, "pasta -> slirp4netns without a restart");
  });
});

describe("pulumi on a connection whose host is another resource's output", { timeout: 900_000 }, () => {
  let lab: LabHost;
  let stack: PulumiStack;

  before(async () => {
    [lab] = labStatus();
    // Nothing of ours on the host (the test above destroyed its stack), so what runs is the host's default.
    await userCommand(lab!, `rm -f ${DROP_IN} && systemctl --user daemon-reload`);
    stack = new PulumiStack(join(CHECKOUT, "tests", "pulumi", "programs", "unknown-host"), "e2e-unknown-host");
    await stack.init({ host: lab!.address, user: lab!.user, hostKey: lab!.hostPublicKey }, { privateKey: readFileSync(lab!.privateKeyPath, "utf8") });
  });

  after(async () => {
    await stack?.remove();
    await labDown();
  });

  it("previews with the host unknown, then applies; destroy leaves no drop-in on a host that had none", async () => {
    const preview = await stack.ok(["preview", "--diff"]);
    assert.match(preview.stdout, /\+ pulumi-nodejs:dynamic:Resource: \(create\)/, preview.stdout);
    assert.match(preview.stdout, /\+ pulumi-nodejs:dynamic:RootlessDockerNetwork: \(create\)/, preview.stdout);
    assert.match(preview.stdout, /address\s*: \[unknown\]/, preview.stdout);
    await stack.ok(["up", "--yes"]);
    const outputs = await stack.outputs();
    assert.equal(outputs.host, `${lab.user}@${lab.address}:22`);
    const state = await hostState(lab);
    assert.match(state.dropIn ?? "", /ROOTLESSKIT_NET=slirp4netns/);
    assert.match(state.rootlesskit, /--net=slirp4netns/);

    await stack.ok(["destroy", "--yes"]);
    assert.equal((await hostState(lab)).dropIn, null, "destroy left a drop-in on a host that had none");
  });
});
