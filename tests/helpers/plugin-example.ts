/**
 * One example program of the rootless-docker plugin (YAML, Python, Go) under the real CLI against one lab host:
 * the stack's config from the host, the CLI's output kept for assertions, and the host read as its user.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { labDown, labUp, type LabHost } from "../../lab/api";
import { DROP_IN, userCommand } from "./host-state";
import { pulumi } from "./pulumi-cli";

/** Someone's drop-in before we came: none of it is ours, so destroy must give it back byte for byte. */
export const ORIGINAL = "[Service]\n# set by hand, keep\nEnvironment=FOO=bar\n";

export class PluginExample {
  readonly stateDir = mkdtempSync(join(tmpdir(), "rdn-plugin-example-state-"));
  private readonly stacks = new Set<string>();

  constructor(
    readonly dir: string,
    readonly host: LabHost,
    private readonly env: Record<string, string> = {},
  ) {}

  run(args: string[]) {
    return pulumi(args, { cwd: this.dir, stateDir: this.stateDir, env: this.env, timeoutMs: 20 * 60_000 });
  }

  /** A non-zero exit fails the test with everything the CLI printed. */
  async ok(args: string[]): Promise<string> {
    const result = await this.run(args);
    assert.equal(result.exitCode, 0, `pulumi ${args.join(" ")} exited ${result.exitCode}:\n${result.stdout}\n${result.stderr}`);
    return result.stdout;
  }

  /** A stack whose config points the example at the host, its key and the lab's IPv6 target. */
  async configure(stack: string): Promise<void> {
    await this.ok(["stack", "init", stack, "--non-interactive"]);
    this.stacks.add(stack);
    const set = (key: string, value: string, ...flags: string[]) => this.ok(["config", "set", "--stack", stack, ...flags, key, "--", value]);
    await set("host", this.host.address);
    await set("hostKey", this.host.hostPublicKey);
    await set("verifyTarget", this.host.target.ipv6);
    await set("verifyTcpPort", String(this.host.target.ipv6TcpPort));
    await set("privateKey", readFileSync(this.host.privateKeyPath, "utf8"), "--secret");
  }

  /** Puts ORIGINAL in the host's drop-in (Docker keeps running on its defaults). */
  writeOriginal(): Promise<string> {
    return userCommand(this.host, `mkdir -p ${DROP_IN.replace(/\/[^/]+$/, "")} && printf '%s' '${ORIGINAL}' > ${DROP_IN}`);
  }

  dropIn(): Promise<string> {
    return userCommand(this.host, `cat ${DROP_IN}`);
  }

  async invocationId(): Promise<string> {
    return (await userCommand(this.host, "systemctl --user show docker -p InvocationID --value")).trim();
  }

  /** The running RootlessKit's command line. */
  rootlesskit(): Promise<string> {
    return userCommand(this.host, "tr '\\0' ' ' < /proc/$(systemctl --user show -p MainPID --value docker)/cmdline");
  }

  cleanup(): void {
    rmSync(this.stateDir, { recursive: true, force: true });
    for (const stack of this.stacks) rmSync(join(this.dir, `Pulumi.${stack}.yaml`), { force: true });
  }
}

/** The Diagnostics section of a preview or update: what the engine attached to each resource. */
export function diagnostics(output: string): string {
  const at = output.indexOf("Diagnostics:");
  assert.notEqual(at, -1, `no Diagnostics section in:\n${output}`);
  return output.slice(at);
}

/** A fresh lab of one host (the test file's RDL_LAB) holding ORIGINAL, and the example's stack configured for it. */
export async function bootExample(dir: string, stack: string, env: Record<string, string> = {}): Promise<PluginExample> {
  await labDown();
  const [host] = await labUp({ hosts: 1 });
  const example = new PluginExample(dir, host!, env);
  await example.writeOriginal();
  await example.configure(stack);
  return example;
}

/** What the first preview of the example must show: the create, and attached to the resource the plan and the
 * restart notice; and that it wrote nothing. */
export async function assertCreatePreview(example: PluginExample, output: string): Promise<void> {
  assert.match(output, /\+ {2}rootless-docker:index:Network network create/);
  assert.match(output, /\+ 2 to create/);
  const found = diagnostics(output);
  assert.match(found, /^Diagnostics:\n {2}rootless-docker:index:Network \(network\):\n/);
  assert.match(found, /\n {4}warning: dev@[^:]+:22: will restart docker\.service/);
  assert.match(found, /file: networkDriver \(DOCKERD_ROOTLESS_ROOTLESSKIT_NET\): \(unset\) → slirp4netns/);
  assert.equal(await example.dropIn(), ORIGINAL, "a preview writes nothing");
}

/**
 * Edits the example's drop-in by hand (slirp4netns → pasta) and checks that a plain `pulumi preview` shows it as an
 * update of networkDriver, with the level and both values, and that `--expect-no-changes` fails. Returns the output.
 */
export async function assertHandEditInPlainPreview(example: PluginExample, cli: string[]): Promise<string> {
  await userCommand(example.host, `sed -i 's/ROOTLESSKIT_NET=slirp4netns/ROOTLESSKIT_NET=pasta/' ${DROP_IN}`);
  const plain = await example.ok(["preview", ...cli]);
  assert.match(plain, /~ {2}rootless-docker:index:Network network update \[diff: ~networkDriver\]/);
  assert.match(plain, /file: networkDriver \(DOCKERD_ROOTLESS_ROOTLESSKIT_NET\): pasta → slirp4netns/);
  assert.match(plain, /~ 1 to update/);
  const check = await example.run(["preview", "--expect-no-changes", ...cli]);
  assert.notEqual(check.exitCode, 0, "drift fails --expect-no-changes");
  return plain;
}

/** Pulumi's marker of a secret in `pulumi stack export` (sdk/go/common/resource/sig). */
const SECRET_SIG = { "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270" };

/** The id Create returns and import takes, for the example's host and the default unit and drop-in. */
export function networkId(example: PluginExample): string {
  return `dev@${example.host.address}:${example.host.port}/docker.service/override.conf`;
}

/** Gives the stack the provider-level connection (host key, and the private key as a secret): import reads the
 * host before any of the program's inputs reach the plugin, so its credentials must come from here. */
export async function configureProviderConnection(example: PluginExample, stack: string): Promise<void> {
  await example.ok(["config", "set", "--stack", stack, "--path", "rootless-docker:connection.hostKey", "--", example.host.hostPublicKey]);
  await example.ok(["config", "set", "--stack", stack, "--secret", "--path", "rootless-docker:connection.privateKey", "--", readFileSync(example.host.privateKeyPath, "utf8")]);
}

/** The Network of the stack as `pulumi stack export` has it; the export holds no private key in plain text. */
export async function exportedNetwork(example: PluginExample, stack: string): Promise<{ id: string; inputs: Record<string, unknown>; outputs: Record<string, unknown> }> {
  const exported = await example.ok(["stack", "export", "--stack", stack]);
  assert.doesNotMatch(exported, /BEGIN OPENSSH/, "no credential in plain text in the state");
  const resources = (JSON.parse(exported) as { deployment: { resources: { type: string; id: string; inputs: Record<string, unknown>; outputs: Record<string, unknown> }[] } }).deployment.resources;
  const found = resources.filter((resource) => resource.type === "rootless-docker:index:Network");
  assert.equal(found.length, 1, exported);
  return found[0]!;
}

/** The outputs' connection (which holds the provider's credentials) is a secret in the state. */
export function assertSecretConnection(outputs: Record<string, unknown>): void {
  const connection = outputs.connection as Record<string, unknown>;
  assert.deepEqual({ ...connection, ciphertext: undefined }, { ...SECRET_SIG, ciphertext: undefined }, JSON.stringify(connection));
  assert.equal(typeof connection.ciphertext, "string");
}
