/**
 * Secrets (issue 4, point 2) through Pulumi's real dynamic-provider host against lab hosts: the lab key,
 * re-encrypted with a recognisable passphrase, plus a recognisable password, go in as inputs; then the
 * serialized provider, every output of Check/Create/Read except the secret `connection`, every error
 * (auth, host key, unreachable, capability), the host's own stderr, the CLI's text and `--json` output and
 * the trace file are searched for them. Also: hostile inputs end in Check failures with no SSH connection.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import * as pulumi from "@pulumi/pulumi";

process.env.RDL_LAB = "grpcsecret";
import { labDown, labUp, type LabHost } from "../../lab/api";
import { runCli } from "../../provider/cli/main";
import * as engine from "../../provider/engine";
import { TRACE_ENV } from "../../provider/transport";
import { RootlessDockerNetwork } from "../../provider/resource";
import { assertInputsInSync } from "../helpers/in-sync";
import { labInputs } from "../helpers/lab-spec";
import { ProviderHostCallError, startProviderHost, type ProviderHost } from "../helpers/provider-host";
import { rejectionOf } from "../helpers/rejection";

type RegisterRequest = { getAdditionalsecretoutputsList(): string[] };

const PASSWORD = "PASSWORD-canary-0c4f7e";
const PASSPHRASE = "PASSPHRASE-canary-91d2aa";

const workDir = mkdtempSync(join(tmpdir(), "grpc-secrets-"));
const tracePath = join(workDir, "trace.jsonl");
let trixie: LabHost;
let bookworm: LabHost;
let provider: ProviderHost;
let encryptedKey: string;
let secrets: string[];

/** The lab's key, re-encrypted with PASSPHRASE: it still logs in, and its text is one more secret to look for. */
function encryptedCopyOf(privateKeyPath: string): string {
  const copy = join(workDir, "id_encrypted");
  copyFileSync(privateKeyPath, copy);
  execFileSync("ssh-keygen", ["-q", "-p", "-P", "", "-N", PASSPHRASE, "-f", copy]);
  return readFileSync(copy, "utf8");
}

function keyBodyLines(privateKey: string): string[] {
  return privateKey.split("\n").filter((line) => line.length >= 16 && !line.startsWith("-----"));
}

function assertNoSecret(text: string, where: string): void {
  for (const secret of secrets) assert.ok(!text.includes(secret), `${where} contains a credential (${secret.slice(0, 12)}…):\n${text.slice(0, 3000)}`);
}

/** Inputs for a lab host with every kind of credential set. */
function inputsWithSecrets(host: LabHost, overrides: Record<string, unknown> = {}, connection: Record<string, unknown> = {}): Record<string, unknown> {
  const base = labInputs(host, { networkDriver: "slirp4netns", ipv6: true, verify: { enabled: false }, ...overrides });
  return { ...base, connection: { ...(base.connection as object), privateKey: encryptedKey, privateKeyPassword: PASSPHRASE, password: PASSWORD, ...connection } };
}

function withoutConnection(properties: Record<string, unknown>): Record<string, unknown> {
  const { connection: _secret, ...rest } = properties;
  return rest;
}

async function callError(promise: Promise<unknown>): Promise<ProviderHostCallError> {
  const error = await rejectionOf<unknown>(promise);
  assert.ok(error instanceof ProviderHostCallError, String(error));
  return error;
}

before(async () => {
  await labDown();
  [trixie] = await labUp({ hosts: 1 });
  [bookworm] = await labUp({ hosts: 1, profile: "bookworm", docker: false });
  encryptedKey = encryptedCopyOf(trixie.privateKeyPath);
  const labKey = readFileSync(trixie.privateKeyPath, "utf8");
  secrets = [PASSWORD, PASSPHRASE, encryptedKey, labKey, ...keyBodyLines(encryptedKey), ...keyBodyLines(labKey)];
  writeFileSync(tracePath, "");
  provider = await startProviderHost({ env: { [TRACE_ENV]: tracePath } });
  await provider.configure();
});
after(async () => {
  await provider?.stop();
  await labDown();
  rmSync(workDir, { recursive: true, force: true });
});

describe("through Pulumi's dynamic-provider host", () => {
  it("the serialized provider holds no credential", () => {
    assertNoSecret(provider.providerText, "the serialized provider");
  });

  it("Check, Create and Read outputs hold no credential outside `connection`", async () => {
    const checked = await provider.check({}, inputsWithSecrets(trixie));
    assert.deepEqual(checked.failures, []);
    const created = await provider.create(checked.inputs);
    await assertInputsInSync(inputsWithSecrets(trixie));
    assert.equal(created.properties.networkDriverInEffect, "slirp4netns");
    assertNoSecret(JSON.stringify(withoutConnection(created.properties)), "Create's outputs");
    const read = await provider.read(created.id, created.properties, checked.inputs);
    assertNoSecret(JSON.stringify(withoutConnection(read.properties)), "Read's outputs");
    assertNoSecret(JSON.stringify(read.inputs === null ? {} : withoutConnection(read.inputs)), "Read's inputs");
  });

  const failures: Array<[string, () => Record<string, unknown>, RegExp]> = [
    ["authentication refused", () => inputsWithSecrets(trixie, {}, { user: "nobody" }), /refused the login/],
    ["host key changed", () => inputsWithSecrets(trixie, {}, { hostKey: bookworm.hostPublicKey }), /man-in-the-middle/],
    ["host unreachable", () => inputsWithSecrets(trixie, {}, { port: 2, dialErrorLimit: 2, perDialTimeout: 2 }), /could not open an SSH connection after 2 attempts/],
    ["capability error (pasta on RootlessKit 1.1)", () => inputsWithSecrets(bookworm, { networkDriver: "pasta" }, { hostKey: bookworm.hostPublicKey }), /pasta/],
  ];
  for (const [name, inputs, expected] of failures) {
    it(`the ${name} error holds no credential, nor does the host's stderr`, async () => {
      const error = await callError(provider.create(inputs()));
      assert.match(error.details, expected);
      assertNoSecret(`${error.details}\n${error.stack}`, `the ${name} error`);
      assertNoSecret(provider.stderr(), "the provider host's stderr");
    });
  }
});

describe("CLI output on real hosts", () => {
  for (const json of [false, true]) {
    it(`plan --lab ${json ? "--json" : "(text)"} holds no credential`, async () => {
      let output = "";
      const code = await runCli(["plan", "--lab", ...(json ? ["--json"] : [])], { stdout: (text) => (output += text), stderr: (text) => (output += text), interactive: true, engine });
      assert.notEqual(output, "");
      assert.ok([0, 1, 2].includes(code));
      assertNoSecret(output, `the CLI's ${json ? "--json" : "text"} output`);
    });
  }
});

describe("hostile input through Check", () => {
  it("every hostile value is a Check failure naming its property, and no SSH connection is made", async () => {
    const hostile: Array<[string, Record<string, unknown>, Record<string, unknown>]> = [
      ["dropInName", { dropInName: "../../.bashrc.conf" }, {}],
      ["extraFlags[0]", { extraFlags: ["--foo=$(id)"] }, {}],
      ["extraFlags[0]", { extraFlags: ["--ipv6 --net=vpnkit"] }, {}],
      ["extraFlags[0]", { extraFlags: ["\uff0d\uff0dnet=host"] }, {}],
      ["extraFlags[0]", { extraFlags: ["--foo=a\nDOCKERD_ROOTLESS_ROOTLESSKIT_NET=host"] }, {}],
      ["unit", { unit: "docker.service/../x.service" }, {}],
      ["dropInName", { dropInName: "overrid\u0435.conf" }, {}],
      ["dropInName", { dropInName: "x\0.conf" }, {}],
      ["connection.host", {}, { host: "10.0.0.1; id" }],
      ["connection.user", {}, { user: "a".repeat(100_000) }],
    ];
    const traceBefore = readFileSync(tracePath, "utf8");
    for (const [property, overrides, connection] of hostile) {
      const checked = await provider.check({}, inputsWithSecrets(trixie, overrides, connection));
      assert.ok(
        checked.failures.some((failure) => failure.property === property),
        `${property} with ${JSON.stringify({ ...overrides, ...connection }).slice(0, 80)}: failures ${JSON.stringify(checked.failures).slice(0, 300)}`,
      );
      assertNoSecret(JSON.stringify(checked.failures), "the Check failures");
    }
    assert.equal(readFileSync(tracePath, "utf8"), traceBefore, "an SSH connection was made for hostile inputs");
  });
});

describe("the resource", () => {
  it("registers `connection` as an additional secret output, and its output is secret", async () => {
    pulumi.runtime.setMocks({ newResource: (args) => ({ id: "mock-id", state: args.inputs }), call: (args) => args.inputs }, "project", "stack", false);
    // The mock monitor drops the register request's options; keep what the resource asked for.
    const monitor = pulumi.runtime.getMonitor() as unknown as { registerResource: (request: RegisterRequest, callback: unknown) => unknown };
    const register = monitor.registerResource.bind(monitor);
    const requested: string[][] = [];
    monitor.registerResource = (request, callback) => {
      requested.push(request.getAdditionalsecretoutputsList());
      return register(request, callback);
    };
    const resource = new RootlessDockerNetwork("secret-check", { connection: { host: "10.0.0.2", user: "dev", password: PASSWORD }, networkDriver: "slirp4netns" });
    assert.equal(await (resource.connection as unknown as { isSecret: Promise<boolean> }).isSecret, true);
    assert.equal(requested.length, 1);
    assert.ok(requested[0]!.includes("connection"), JSON.stringify(requested));
  });
});

it("the trace file holds no credential", () => {
  assert.notEqual(readFileSync(tracePath, "utf8"), "");
  assertNoSecret(readFileSync(tracePath, "utf8"), "the trace file");
});
