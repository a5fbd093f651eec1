/**
 * examples/yaml — a Pulumi YAML program, no TypeScript anywhere — run by the real `pulumi` CLI with the
 * `rootless-docker` plugin against a real lab host: preview, up, a second up that changes nothing, a hand edit that
 * a plain `pulumi preview` names by property, `pulumi import` adopting the drop-in, and destroy giving the original
 * file back. Assertions read the host and what the CLI printed.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

process.env.RDL_LAB = "pluginyaml";
import { labDown, labUp, type LabHost } from "../../lab/api";
import { DROP_IN, userCommand } from "../helpers/host-state";
import { PROJECT_ROOT } from "../helpers/provider-host";
import { pulumi } from "../helpers/pulumi-cli";
import { ensureTools } from "../../tools/pulumi/build";

const EXAMPLE = join(PROJECT_ROOT, "examples", "yaml");
const STACK = "e2e-test";
const ADOPT_STACK = "e2e-test-adopt";
/** Someone's drop-in before we came: none of it is ours, so destroy must give it back byte for byte. */
const ORIGINAL = "[Service]\n# set by hand, keep\nEnvironment=FOO=bar\n";

describe("examples/yaml through the real pulumi CLI and the rootless-docker plugin", { timeout: 900_000 }, () => {
  let host: LabHost;
  let stateDir: string;
  const cli = {
    run: (args: string[]) => pulumi(args, { cwd: EXAMPLE, stateDir }),
    /** A non-zero exit fails the test with everything the CLI printed. */
    async ok(args: string[]): Promise<string> {
      const result = await pulumi(args, { cwd: EXAMPLE, stateDir });
      assert.equal(result.exitCode, 0, `pulumi ${args.join(" ")} exited ${result.exitCode}:\n${result.stdout}\n${result.stderr}`);
      return result.stdout;
    },
  };
  const invocationId = async () => (await userCommand(host, "systemctl --user show docker -p InvocationID --value")).trim();
  const dropIn = () => userCommand(host, `cat ${DROP_IN}`);
  const id = () => `dev@${host.address}:${host.port}/docker.service/override.conf`;
  const configure = async (stack: string) => {
    await cli.ok(["stack", "init", stack, "--non-interactive"]);
    const set = (key: string, value: string, ...flags: string[]) => cli.ok(["config", "set", "--stack", stack, ...flags, key, "--", value]);
    await set("host", host.address);
    await set("hostKey", host.hostPublicKey);
    await set("verifyTarget", host.target.ipv6);
    await set("verifyTcpPort", String(host.target.ipv6TcpPort));
    await set("privateKey", readFileSync(host.privateKeyPath, "utf8"), "--secret");
  };

  before(async () => {
    await labDown();
    [host] = await labUp({ hosts: 1 });
    await userCommand(host, `mkdir -p ${DROP_IN.replace(/\/[^/]+$/, "")} && printf '%s' '${ORIGINAL}' > ${DROP_IN}`);
    // The YAML language host goes next to pulumi, where the engine finds its bundled plugins.
    await ensureTools(["yaml"], { verbose: false, buildCommandPlugin: false, commandNeeded: false });
    stateDir = mkdtempSync(join(tmpdir(), "rdn-plugin-yaml-state-"));
    await configure(STACK);
  });
  after(async () => {
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
    for (const stack of [STACK, ADOPT_STACK]) rmSync(join(EXAMPLE, `Pulumi.${stack}.yaml`), { force: true });
    await labDown();
  });

  it("preview shows the create and, attached to the resource, that Docker will restart", async (t) => {
    const out = await cli.ok(["preview", "--non-interactive", "--stack", STACK]);
    t.diagnostic(out);
    assert.match(out, /\+ 2 to create/);
    const diagnostics = out.slice(out.indexOf("Diagnostics:"));
    assert.match(diagnostics, /^Diagnostics:\n {2}rootless-docker:index:Network \(network\):\n/);
    assert.match(diagnostics, /\n {4}warning: dev@[^:]+:22: will restart docker\.service/);
    assert.equal(await dropIn(), ORIGINAL, "a preview writes nothing");
  });

  it("up converges the host; the outputs say what runs", async () => {
    await cli.ok(["up", "--yes", "--skip-preview", "--non-interactive", "--stack", STACK]);
    const file = await dropIn();
    assert.ok(file.startsWith(ORIGINAL), file);
    assert.match(file, /DOCKERD_ROOTLESS_ROOTLESSKIT_NET=slirp4netns/);
    assert.match(await userCommand(host, "tr '\\0' ' ' < /proc/$(systemctl --user show -p MainPID --value docker)/cmdline"), /--ipv6/);
    const outputs = JSON.parse(await cli.ok(["stack", "output", "--json", "--stack", STACK])) as Record<string, unknown>;
    assert.deepEqual(outputs, { networkDriverInEffect: "slirp4netns", ipv6InEffect: true, ipv6Reachable: true });
  });

  it("a second up changes nothing: no update, no restart", async () => {
    const before = await invocationId();
    const out = await cli.ok(["up", "--yes", "--skip-preview", "--non-interactive", "--stack", STACK]);
    assert.match(out, /2 unchanged/);
    assert.doesNotMatch(out, /restarted|updated/);
    assert.equal(await invocationId(), before);
    const check = await cli.run(["preview", "--non-interactive", "--expect-no-changes", "--stack", STACK]);
    assert.equal(check.exitCode, 0, check.stdout + check.stderr);
  });

  it("pulumi import adopts the drop-in by id, with the credentials from the provider configuration", async (t) => {
    await configure(ADOPT_STACK);
    await cli.ok(["config", "set", "--stack", ADOPT_STACK, "--path", "rootless-docker:connection.hostKey", "--", host.hostPublicKey]);
    await cli.ok(["config", "set", "--stack", ADOPT_STACK, "--secret", "--path", "rootless-docker:connection.privateKey", "--", readFileSync(host.privateKeyPath, "utf8")]);
    const out = await cli.ok(["import", "rootless-docker:index:Network", "adopted", id(), "--yes", "--protect=false", "--non-interactive", "--stack", ADOPT_STACK]);
    t.diagnostic(out);
    assert.match(out, /= 1 imported/);
    assert.match(out, /type: rootless-docker:Network\n\s+properties:\n\s+connection:\n\s+host: \S+\n\s+user: dev\n\s+ipv6: true\n\s+networkDriver: slirp4netns\n/);
    assert.doesNotMatch(out, /privateKey|BEGIN OPENSSH/, "no credential in the generated code");
    // Forget the adopted copy without touching the host: the first stack still manages it.
    await cli.ok(["stack", "rm", ADOPT_STACK, "--force", "--yes", "--non-interactive"]);
  });

  it("a hand edit of the drop-in shows in a plain `pulumi preview`, the property named with its level", async (t) => {
    await userCommand(host, `sed -i 's/ROOTLESSKIT_NET=slirp4netns/ROOTLESSKIT_NET=pasta/' ${DROP_IN}`);
    const plain = await cli.ok(["preview", "--non-interactive", "--stack", STACK]);
    t.diagnostic(plain);
    assert.match(plain, /~ {2}rootless-docker:index:Network network update \[diff: ~networkDriver\]/);
    assert.match(plain, /file: networkDriver \(DOCKERD_ROOTLESS_ROOTLESSKIT_NET\): pasta → slirp4netns/);
    assert.match(plain, /~ 1 to update/);
    const detailed = await cli.ok(["preview", "--non-interactive", "--diff", "--stack", STACK]);
    t.diagnostic(detailed);
    assert.match(detailed, /~ networkDriver: "pasta" => "slirp4netns"/);
    const check = await cli.run(["preview", "--non-interactive", "--expect-no-changes", "--stack", STACK]);
    assert.notEqual(check.exitCode, 0, "drift fails --expect-no-changes");
    await cli.ok(["up", "--yes", "--skip-preview", "--non-interactive", "--stack", STACK]);
    assert.match(await dropIn(), /DOCKERD_ROOTLESS_ROOTLESSKIT_NET=slirp4netns/);
  });

  it("destroy gives back the drop-in as it was before", async () => {
    await cli.ok(["destroy", "--yes", "--skip-preview", "--non-interactive", "--stack", STACK]);
    assert.equal(await dropIn(), ORIGINAL);
  });
});
