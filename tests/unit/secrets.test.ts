/**
 * Secrets (issue 4, point 2): a recognisable private key, password and passphrase are used for real
 * connections that fail in each way a connection can fail; the errors (message, stack, cause chain,
 * JSON), the CLI's text and `--json` output and the trace file are then searched for them.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, before, describe, it } from "node:test";
import { inspect } from "node:util";
import { validateNetworkArgs } from "../../provider/core/schema";
import type { NetworkSpec } from "../../provider/core/types";
import { runCli } from "../../provider/cli/main";
import * as engine from "../../provider/engine";
import { isConnectionError, isHostKeyError } from "../../provider/errors";
import { TRACE_ENV } from "../../provider/transport";
import { generateKeyPair, startSshServer, type TestSshServer } from "../helpers/ssh-server";
import { rejectionOf } from "../helpers/rejection";

// An agent in the developer's environment would add keys to every login.
delete process.env.SSH_AUTH_SOCK;

const PASSWORD = "PASSWORD-canary-5d1e9a";
const PASSPHRASE = "PASSPHRASE-canary-b73c20";
const encryptedKey = generateKeyPair({ passphrase: PASSPHRASE, comment: "COMMENT-canary-encrypted" });
const plainKey = generateKeyPair({ comment: "COMMENT-canary-plain" });

/** Every piece of a credential that must not leak: whole values and each base64 line of the keys. */
const SECRETS = [PASSWORD, PASSPHRASE, ...[encryptedKey, plainKey].flatMap((key) => [key.privateKey, ...keyBodyLines(key.privateKey)])];

function keyBodyLines(privateKey: string): string[] {
  return privateKey.split("\n").filter((line) => line.length >= 16 && !line.startsWith("-----"));
}

function assertNoSecret(text: string, where: string): void {
  for (const secret of SECRETS) assert.ok(!text.includes(secret), `${where} contains a credential (${secret.slice(0, 12)}…):\n${text.slice(0, 2000)}`);
}

/** Everything an error can show: message, stack, the whole cause chain and own properties, and its JSON. */
function everythingOf(error: unknown): string {
  return [inspect(error, { depth: Infinity, showHidden: true }), JSON.stringify(error, Object.getOwnPropertyNames(error)), String((error as Error).stack)].join("\n");
}

const workDir = mkdtempSync(join(tmpdir(), "secrets-test-"));
const tracePath = join(workDir, "trace.jsonl");
const servers: TestSshServer[] = [];
let refusing: TestSshServer;
let otherHostKey: string;

before(async () => {
  process.env[TRACE_ENV] = tracePath;
  refusing = await startSshServer({ refuseAuth: true });
  servers.push(refusing);
  otherHostKey = generateKeyPair({ comment: "" }).publicKey.split(" ").slice(0, 2).join(" ");
});
afterEach(() => {
  // The trace must hold no secret after each kind of failure.
  assertNoSecret(readTrace(), "the trace file");
});
after(async () => {
  delete process.env[TRACE_ENV];
  await Promise.all(servers.map((server) => server.close()));
  rmSync(workDir, { recursive: true, force: true });
});

function readTrace(): string {
  try {
    return readFileSync(tracePath, "utf8");
  } catch {
    return "";
  }
}

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function spec(connection: Record<string, unknown>): NetworkSpec {
  const validation = validateNetworkArgs({
    connection: { host: "127.0.0.1", user: "dev", dialErrorLimit: 2, perDialTimeout: 5, ...connection },
    networkDriver: "pasta",
    ipv6: true,
    verify: { targets: [{ address: "fd99::1" }] },
  });
  assert.ok(validation.ok, JSON.stringify(!validation.ok && validation.problems));
  return validation.value;
}

const withAllCredentials = { privateKey: encryptedKey.privateKey, privateKeyPassword: PASSPHRASE, password: PASSWORD };

describe("engine errors carry no credential", () => {
  it("authentication refused (key with passphrase, and password)", async () => {
    const error = await rejectionOf<unknown>(engine.applyHost(spec({ ...withAllCredentials, port: refusing.port, hostKey: refusing.hostPublicKey })));
    assert.ok(isConnectionError(error), everythingOf(error));
    assert.match((error as Error).message, /refused the login/);
    assertNoSecret(everythingOf(error), "the auth error");
  });

  it("host key changed", async () => {
    const error = await rejectionOf<unknown>(engine.inspectHost(spec({ ...withAllCredentials, port: refusing.port, hostKey: otherHostKey })));
    assert.ok(isHostKeyError(error), everythingOf(error));
    assertNoSecret(everythingOf(error), "the host-key error");
  });

  it("host unreachable after the dial retries", async () => {
    const error = await rejectionOf<unknown>(engine.verifyHost(spec({ ...withAllCredentials, port: await closedPort() })));
    assert.ok(isConnectionError(error), everythingOf(error));
    assert.match((error as Error).message, /after 2 attempts/);
    assertNoSecret(everythingOf(error), "the unreachable error");
  });

  it("wrong passphrase for the key", async () => {
    const error = await rejectionOf<unknown>(engine.inspectHost(spec({ privateKey: encryptedKey.privateKey, privateKeyPassword: `${PASSPHRASE}-wrong`, port: refusing.port, hostKey: refusing.hostPublicKey })));
    assert.ok(isConnectionError(error), everythingOf(error));
    assertNoSecret(everythingOf(error).replaceAll(`${PASSPHRASE}-wrong`, "<wrong passphrase>"), "the unusable-key error");
    assert.ok(!everythingOf(error).includes(`${PASSPHRASE}-wrong`), "the wrong passphrase is shown");
  });

  it("warnings of a skipped host-key check carry no credential", async () => {
    const warnings: string[] = [];
    await rejectionOf<unknown>(engine.inspectHost(spec({ ...withAllCredentials, port: refusing.port, dangerouslySkipHostKeyVerification: true }), { onWarning: (w) => warnings.push(w) }));
    assert.equal(warnings.length, 1);
    assertNoSecret(warnings.join("\n"), "the warning");
  });
});

describe("CLI output carries no credential", () => {
  async function cli(args: string[]): Promise<{ code: number; output: string }> {
    let output = "";
    const code = await runCli(args, { stdout: (text) => (output += text), stderr: (text) => (output += text), interactive: true, engine });
    return { code, output };
  }

  for (const json of [false, true]) {
    it(`plan ${json ? "--json" : "(text)"}: auth refused, host key changed and unreachable hosts`, async () => {
      const keyFile = join(workDir, "id_plain");
      writeFileSync(keyFile, plainKey.privateKey, { mode: 0o600 });
      const path = join(workDir, "hosts.yaml");
      const connection = { host: "127.0.0.1", user: "dev", privateKeyPath: keyFile, dialErrorLimit: 1, perDialTimeout: 5 };
      writeFileSync(
        path,
        JSON.stringify({
          defaults: { networkDriver: "pasta", ipv6: true, verify: { targets: [{ address: "fd99::1" }] } },
          hosts: [
            { name: "refused", connection: { ...connection, port: refusing.port, hostKey: refusing.hostPublicKey } },
            { name: "changed", connection: { ...connection, port: refusing.port, hostKey: otherHostKey } },
            { name: "dead", connection: { ...connection, port: await closedPort() } },
          ],
        }),
      );
      const { code, output } = await cli(["plan", "--hosts", path, ...(json ? ["--json"] : [])]);
      assert.equal(code, 1, output);
      for (const expected of ["refused the login", "possible man-in-the-middle", "could not open an SSH connection"]) assert.ok(output.includes(expected), `${expected} missing:\n${output}`);
      assertNoSecret(output, `the CLI's ${json ? "--json" : "text"} output`);
    });
  }

  it("an inline password or passphrase in a hosts file is refused without echoing it", async () => {
    const path = join(workDir, "inline.yaml");
    writeFileSync(
      path,
      JSON.stringify({
        hosts: [{ name: "inline", networkDriver: "pasta", connection: { host: "127.0.0.1", user: "dev", password: PASSWORD, privateKey: plainKey.privateKey, privateKeyPassword: PASSPHRASE } }],
      }),
    );
    for (const json of [[], ["--json"]]) {
      const { code, output } = await cli(["plan", "--hosts", path, ...json]);
      assert.equal(code, 1);
      assert.match(output, /inline secrets are refused/);
      assertNoSecret(output, "the CLI's refusal");
    }
  });

  it("a hosts file that is not valid YAML is reported by line, without quoting its (secret) lines", async () => {
    const path = join(workDir, "broken.yaml");
    writeFileSync(path, `hosts:\n  - name: broken\n    connection:\n      password: ${PASSWORD}\n     host: 127.0.0.1\n`);
    const { code, output } = await cli(["plan", "--hosts", path]);
    assert.equal(code, 1);
    assert.match(output, /is not valid YAML: [^:]+ \(line \d+, column \d+\)/);
    assertNoSecret(output, "the CLI's YAML error");
  });
});

it("the trace file was written (so the search above searched something)", () => {
  const events = readTrace().trimEnd().split("\n").map((line) => JSON.parse(line) as { event: string });
  assert.ok(events.filter((event) => event.event === "connect").length >= 5, readTrace());
});
