import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createConnection, createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, before, describe, it } from "node:test";
import { inspect } from "node:util";
import type { ConnectionSpec } from "../../provider/core/types";
import { isConnectionError, isHostKeyError, isRemoteTimeoutError } from "../../provider/errors";
import { openSession, TRACE_ENV, transportStats, type SshSession } from "../../provider/transport";
import { generateKeyPair, startSshServer, type TestSshServer } from "../helpers/ssh-server";
import { rejectionOf } from "../helpers/rejection";

// An agent in the developer's environment would add keys to every login; the agent test sets its own.
delete process.env.SSH_AUTH_SOCK;

const clientKey = generateKeyPair();
const workDir = mkdtempSync(join(tmpdir(), "transport-test-"));
const toClose: Array<{ close(): unknown }> = [];

function track<T extends { close(): unknown }>(closable: T): T {
  toClose.push(closable);
  return closable;
}

afterEach(async () => {
  await Promise.all(toClose.splice(0).map((closable) => closable.close()));
});
after(() => rmSync(workDir, { recursive: true, force: true }));

async function server(options: Parameters<typeof startSshServer>[0] = {}): Promise<TestSshServer> {
  return track(await startSshServer({ authorizedKey: clientKey.publicKey, ...options }));
}

function connection(target: { port: number; hostPublicKey?: string }, overrides: Partial<ConnectionSpec> = {}): ConnectionSpec {
  return {
    host: "127.0.0.1",
    port: target.port,
    user: "dev",
    privateKey: clientKey.privateKey,
    dialErrorLimit: 1,
    perDialTimeout: 10,
    hostKey: target.hostPublicKey,
    ...overrides,
  };
}

async function open(conn: ConnectionSpec, onWarning?: (message: string) => void): Promise<SshSession> {
  return track(await openSession(conn, { onWarning }));
}

function writeFile(name: string, content: string): string {
  const path = join(workDir, name);
  writeFileSync(path, content, { mode: 0o600 });
  return path;
}

/** `ssh-keygen -lf` as an independent source of truth for fingerprints. */
function opensshFingerprint(publicKeyLine: string): string {
  const output = execFileSync("ssh-keygen", ["-lf", writeFile("fingerprint.pub", `${publicKeyLine}\n`)], { encoding: "utf8" });
  return output.split(" ")[1]!;
}

/** A port nothing listens on: bound, then released. */
async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const { port } = probe.address() as { port: number };
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/** A TCP front that hangs up on the first `dropFirst` connections, then relays to `port`. */
async function flakyFront(port: number, dropFirst: number): Promise<{ port: number; accepted: () => number; close(): Promise<void> }> {
  let accepted = 0;
  const front: Server = createServer((socket) => {
    accepted += 1;
    if (accepted <= dropFirst) return void socket.destroy();
    const upstream = createConnection(port, "127.0.0.1");
    socket.pipe(upstream).pipe(socket);
    socket.on("error", () => upstream.destroy());
    upstream.on("error", () => socket.destroy());
  });
  await new Promise<void>((resolve) => front.listen(0, "127.0.0.1", resolve));
  return track({
    port: (front.address() as { port: number }).port,
    accepted: () => accepted,
    close: () => new Promise<void>((resolve) => front.close(() => resolve())),
  });
}

describe("exec", () => {
  it("returns exit codes, stdout and stderr, feeds stdin, and runs many commands over one connection", async () => {
    const target = await server();
    const session = await open(connection(target));
    assert.equal(session.label, `dev@127.0.0.1:${target.port}`);

    assert.deepEqual(await session.exec("printf out; printf err >&2; exit 3"), { exitCode: 3, stdout: "out", stderr: "err" });
    assert.deepEqual(await session.exec("tr a-z A-Z", { stdin: "hello\n" }), { exitCode: 0, stdout: "HELLO\n", stderr: "" });
    assert.deepEqual(await session.exec("wc -c", { stdin: Buffer.from([0, 1, 2]) }), { exitCode: 0, stdout: "3\n", stderr: "" });
    const killed = await session.exec("kill -TERM $$");
    assert.equal(killed.exitCode, null);
    assert.equal(killed.signal, "SIGTERM");
    assert.equal(target.connections, 1);
    assert.equal(target.execRequests.length, 4);
  });

  it("fails a command that outlives timeoutMs with RemoteTimeoutError naming the step and the time, and keeps the connection usable", async () => {
    const target = await server();
    const session = await open(connection(target));
    const error = await rejectionOf(session.exec("echo started; sleep 30", { timeoutMs: 300, step: "gather facts", timeoutHint: "raise timeouts.factsSeconds" }));
    assert.ok(isRemoteTimeoutError(error), String(error));
    assert.match(error.message, new RegExp(`^dev@127\\.0\\.0\\.1:${target.port}: gather facts: no answer within 300 ms`));
    assert.match(error.message, /raise timeouts\.factsSeconds/);
    assert.match(error.message, /evidence:\n {4}started/);
    assert.equal((await session.exec("echo still here")).stdout, "still here\n");
  });

  it("gives up on a host that accepts the command and never ends it, closing the channel", async () => {
    const target = await server({ hangOnExec: true });
    const session = await open(connection(target));
    const error = await rejectionOf(session.exec("echo anything", { timeoutMs: 500, step: "apply" }));
    assert.ok(isRemoteTimeoutError(error), String(error));
    assert.match(error.message, /: apply: no answer within 500 ms; the command's channel was closed/);
    session.close();
    // The whole connection goes with the session: nothing of the hung host is left open.
    for (let i = 0; i < 100 && target.openConnections > 0; i++) await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(target.openConnections, 0);
  });

  it("rejects with ConnectionError when the connection drops mid-command, and for every later exec", async () => {
    const target = await server({ dropConnectionOnExec: true });
    const session = await open(connection(target));
    const error = await rejectionOf(session.exec("echo never-finishes"));
    assert.ok(isConnectionError(error), String(error));
    assert.match(error.message, /run remote command: the SSH connection was lost before the command finished/);
    assert.ok(isConnectionError(await rejectionOf(session.exec("true"))));
    assert.equal(target.execRequests.length, 1);
  });
});

describe("host keys", () => {
  it("accepts the pinned OpenSSH key line, with or without a comment", async () => {
    const target = await server();
    await open(connection(target, { hostKey: `${target.hostPublicKey} root@somewhere` }));
  });

  it("accepts a pinned rsa key of a host that also has an ed25519 key (which ssh2 would prefer)", async () => {
    const rsa = generateKeyPair({ type: "rsa" });
    const target = await server({ extraHostKeys: [rsa] });
    await open(connection(target, { hostKey: rsa.publicKey }));
    await open(connection(target, { hostKey: target.hostPublicKey }));
  });

  it("refuses a different pinned key before any command, showing the offered key and how to pin it", async () => {
    const target = await server();
    const error = await rejectionOf(open(connection(target, { hostKey: generateKeyPair().publicKey })));
    assert.ok(isHostKeyError(error), String(error));
    const base64 = target.hostPublicKey.split(" ")[1]!;
    assert.match(error.message, /possible man-in-the-middle/);
    assert.ok(error.message.includes(opensshFingerprint(target.hostPublicKey)), error.message);
    assert.ok(error.message.includes(`hostKey: "ssh-ed25519 ${base64}"`), error.message);
    assert.equal(target.execRequests.length, 0);
  });

  it("accepts a SHA256 fingerprint pin as ssh-keygen prints it and refuses another one", async () => {
    const target = await server();
    await open(connection(target, { hostKey: opensshFingerprint(target.hostPublicKey) }));
    const other = opensshFingerprint(generateKeyPair().publicKey);
    assert.ok(isHostKeyError(await rejectionOf(open(connection(target, { hostKey: other })))));
    assert.equal(target.execRequests.length, 0);
  });

  it("refuses a hostKey that is neither a key line nor a fingerprint", async () => {
    const target = await server();
    const error = await rejectionOf(open(connection(target, { hostKey: "ssh-ed25519 not-base64!" })));
    assert.ok(isHostKeyError(error));
    assert.match(error.message, /neither an OpenSSH public-key line nor a SHA256 fingerprint/);
  });

  it("accepts a plain known_hosts entry in [host]:port form, but not the bare host on another port", async () => {
    const target = await server();
    const bracketed = writeFile("known_bracketed", `# comment\n[127.0.0.1]:${target.port} ${target.hostPublicKey}\n`);
    await open(connection(target, { hostKey: undefined, knownHostsPath: bracketed }));
    const bare = writeFile("known_bare", `127.0.0.1 ${target.hostPublicKey}\n`);
    assert.ok(isHostKeyError(await rejectionOf(open(connection(target, { hostKey: undefined, knownHostsPath: bare })))));
  });

  it("asks a host with several keys for the type known_hosts lists (rsa only here), as OpenSSH does", async () => {
    const rsa = generateKeyPair({ type: "rsa" });
    const target = await server({ extraHostKeys: [rsa] });
    const rsaOnly = writeFile("known_rsa_only", `[127.0.0.1]:${target.port} ${rsa.publicKey}\n`);
    await open(connection(target, { hostKey: undefined, knownHostsPath: rsaOnly }));
  });

  it("accepts an entry hashed by ssh-keygen -H", async () => {
    const target = await server();
    const path = writeFile("known_hashed", `[127.0.0.1]:${target.port} ${target.hostPublicKey}\n`);
    execFileSync("ssh-keygen", ["-H", "-f", path], { stdio: "ignore" });
    assert.match(readFileSync(path, "utf8"), /^\|1\|[^ ]+ ssh-ed25519 /);
    await open(connection(target, { hostKey: undefined, knownHostsPath: path }));
  });

  it("refuses a key marked @revoked even when another line lists it, and ignores @cert-authority lines", async () => {
    const target = await server();
    const lines = [`@cert-authority * ${target.hostPublicKey}`, `@revoked * ${target.hostPublicKey}`, `[127.0.0.1]:${target.port} ${target.hostPublicKey}`];
    const path = writeFile("known_revoked", `${lines.join("\n")}\n`);
    const error = await rejectionOf(open(connection(target, { hostKey: undefined, knownHostsPath: path })));
    assert.ok(isHostKeyError(error));
    assert.match(error.message, /line 2 of .* marks @revoked/);
    assert.equal(target.execRequests.length, 0);

    const caOnly = writeFile("known_ca", `${lines[0]}\n`);
    assert.match((await rejectionOf(open(connection(target, { hostKey: undefined, knownHostsPath: caOnly })))).message, /unknown host key/);
  });

  it("refuses a changed key, naming the known_hosts line to replace", async () => {
    const target = await server();
    const path = writeFile("known_changed", `[127.0.0.1]:${target.port} ${generateKeyPair().publicKey}\n`);
    const error = await rejectionOf(open(connection(target, { hostKey: undefined, knownHostsPath: path })));
    assert.ok(isHostKeyError(error));
    assert.match(error.message, /line 1 of .* holds a different ssh-ed25519 key .*man-in-the-middle/);
    assert.ok(error.message.includes(`replace line 1 of ${path} with: [127.0.0.1]:${target.port} ${target.hostPublicKey}`), error.message);
  });

  it("refuses an unknown host with the exact known_hosts line, and that line then works", async () => {
    const target = await server();
    const path = join(workDir, "known_missing");
    const error = await rejectionOf(open(connection(target, { hostKey: undefined, knownHostsPath: path })));
    assert.ok(isHostKeyError(error), String(error));
    assert.equal(target.execRequests.length, 0);
    const line = `[127.0.0.1]:${target.port} ${target.hostPublicKey}`;
    assert.ok(error.message.includes(`add this line to ${path}: ${line}`), error.message);
    assert.ok(error.message.includes(opensshFingerprint(target.hostPublicKey)));

    writeFileSync(path, `${line}\n`);
    await open(connection(target, { hostKey: undefined, knownHostsPath: path }));
  });

  it("with dangerouslySkipHostKeyVerification connects and warns on every connection, also on stderr", async () => {
    const target = await server();
    const warnings: string[] = [];
    const stderr: string[] = [];
    const originalWrite = process.stderr.write;
    process.stderr.write = ((chunk: string) => stderr.push(String(chunk)) > 0) as typeof process.stderr.write;
    try {
      const skip = connection(target, { hostKey: undefined, knownHostsPath: join(workDir, "none"), dangerouslySkipHostKeyVerification: true });
      await open(skip, (message) => warnings.push(message));
      await open(skip, (message) => warnings.push(message));
    } finally {
      process.stderr.write = originalWrite;
    }
    assert.equal(warnings.length, 2);
    assert.match(warnings[0]!, /^dev@127\.0\.0\.1:\d+: WARNING: host-key verification is off/);
    assert.ok(warnings[0]!.includes(opensshFingerprint(target.hostPublicKey)));
    assert.deepEqual(stderr, warnings.map((warning) => `${warning}\n`));
  });
});

describe("authentication", () => {
  it("logs in with a password, and with a passphrase-protected key", async () => {
    const protectedKey = generateKeyPair({ passphrase: "correct horse" });
    const target = await server({ password: "s3cret-pw", authorizedKey: protectedKey.publicKey });
    await open(connection(target, { privateKey: undefined, password: "s3cret-pw" }));
    await open(connection(target, { privateKey: protectedKey.privateKey, privateKeyPassword: "correct horse" }));
  });

  it("logs in through an ssh-agent socket", async () => {
    const target = await server();
    const socketPath = join(workDir, "agent.sock");
    const agent = spawn("ssh-agent", ["-D", "-a", socketPath], { stdio: "ignore" });
    track({ close: () => agent.kill() });
    const keyPath = writeFile("agent_key", clientKey.privateKey);
    chmodSync(keyPath, 0o600);
    // ssh-add retries until the agent has created its socket.
    execFileSync("sh", ["-c", `for i in $(seq 50); do ssh-add "$1" 2>/dev/null && exit 0; sleep 0.1; done; exit 1`, "sh", keyPath], {
      env: { ...process.env, SSH_AUTH_SOCK: socketPath },
    });
    const session = await open(connection(target, { privateKey: undefined, agentSocketPath: socketPath }));
    assert.equal((await session.exec("echo agent")).stdout, "agent\n");
  });

  it("names user, host and methods on refusal, never retries it, and leaks no credential", async () => {
    const passphrase = "pass-phrase-4711";
    const password = "pass-word-0815";
    const protectedKey = generateKeyPair({ passphrase });
    const target = await server({ refuseAuth: true });
    const error = await rejectionOf(
      openSession(connection(target, { privateKey: protectedKey.privateKey, privateKeyPassword: passphrase, password, dialErrorLimit: 3 })),
    );
    assert.ok(isConnectionError(error), String(error));
    assert.match(error.message, new RegExp(`^dev@127\\.0\\.0\\.1:${target.port}: connect: the host refused the login of user "dev"`));
    assert.match(error.message, /tried: publickey \(privateKey with privateKeyPassword\), password/);
    assert.equal(target.connections, 1);
    assertNoSecrets(error, [passphrase, password, ...keyBodyChunks(protectedKey.privateKey)]);
  });

  it("reports an unusable key (wrong passphrase) without the key or the passphrase", async () => {
    const protectedKey = generateKeyPair({ passphrase: "right-one" });
    const target = await server();
    const error = await rejectionOf(openSession(connection(target, { privateKey: protectedKey.privateKey, privateKeyPassword: "wrong-one" })));
    assert.ok(isConnectionError(error), String(error));
    assert.match(error.message, /the privateKey cannot be used/);
    assertNoSecrets(error, ["right-one", "wrong-one", ...keyBodyChunks(protectedKey.privateKey)]);
    const publicOnly = await rejectionOf(openSession(connection(target, { privateKey: clientKey.publicKey })));
    assert.ok(isConnectionError(publicOnly), String(publicOnly));
    assert.match(publicOnly.message, /connect: the privateKey cannot be used: it is a public key/);
    assert.equal(target.connections, 0);
  });
});

function keyBodyChunks(privateKey: string): string[] {
  return privateKey.split("\n").filter((line) => line.length > 20 && !line.startsWith("-----"));
}

function assertNoSecrets(error: Error, secrets: string[]): void {
  const everything = [error.message, error.stack ?? "", inspect(error, { depth: Infinity, showHidden: true }), inspect(error.cause, { depth: Infinity })].join("\n");
  for (const secret of secrets) assert.ok(!everything.includes(secret), `the error reveals a credential: ${secret.slice(0, 6)}…`);
}

describe("dialing", () => {
  it("retries a refused port exactly dialErrorLimit times and names the attempts and the cause", async () => {
    const port = await closedPort();
    const error = (await rejectionOf(openSession(connection({ port }, { dialErrorLimit: 3 })))) as Error & { evidence: string[] };
    assert.ok(isConnectionError(error), String(error));
    assert.match(error.message, new RegExp(`^dev@127\\.0\\.0\\.1:${port}: connect: could not open an SSH connection after 3 attempts.*ECONNREFUSED`));
    assert.deepEqual(
      error.evidence.map((line) => line.replace(/:.*/, "")),
      ["attempt 1", "attempt 2", "attempt 3"],
    );
  });

  it("counts every hang-up before the SSH banner as an attempt and stops at the limit", async () => {
    const front = await flakyFront(await closedPort(), Infinity);
    const error = await rejectionOf(openSession(connection({ port: front.port }, { dialErrorLimit: 2 })));
    assert.ok(isConnectionError(error));
    assert.equal(front.accepted(), 2);
  });

  it("with dialErrorLimit -1 keeps retrying until the host answers", async () => {
    const target = await server();
    const front = await flakyFront(target.port, 3);
    const session = await open(connection({ port: front.port, hostPublicKey: target.hostPublicKey }, { dialErrorLimit: -1 }));
    assert.equal((await session.exec("echo up")).stdout, "up\n");
    assert.equal(front.accepted(), 4);
  });

  it("bounds each attempt by perDialTimeout and retries a stalled handshake", async () => {
    const target = await server({ authDelayMs: 5_000 });
    const error = (await rejectionOf(openSession(connection(target, { perDialTimeout: 0.3, dialErrorLimit: 2 })))) as Error & { evidence: string[] };
    assert.ok(isConnectionError(error), String(error));
    assert.equal(target.connections, 2);
    assert.match(error.evidence.join("\n"), /Timed out while waiting for handshake/);
  });

  it("never retries a host-key refusal", async () => {
    const target = await server();
    await rejectionOf(openSession(connection(target, { hostKey: generateKeyPair().publicKey, dialErrorLimit: 5 })));
    assert.equal(target.connections, 1);
  });
});

describe("bastion", () => {
  let bastion: TestSshServer;
  let target: TestSshServer;
  before(async () => {
    bastion = await startSshServer({ authorizedKey: clientKey.publicKey, allowForwarding: true });
    target = await startSshServer({ authorizedKey: clientKey.publicKey });
  });
  after(async () => Promise.all([bastion.close(), target.close()]));

  const throughBastion = (overrides: { bastionKey?: string; targetKey?: string } = {}) =>
    connection(target, { hostKey: overrides.targetKey ?? target.hostPublicKey, proxy: connection(bastion, { hostKey: overrides.bastionKey ?? bastion.hostPublicKey }) });

  it("runs commands on the target through the bastion", async () => {
    const session = await open(throughBastion());
    assert.equal(session.label, `dev@127.0.0.1:${target.port}`);
    assert.deepEqual(await session.exec("echo via bastion"), { exitCode: 0, stdout: "via bastion\n", stderr: "" });
    assert.deepEqual(bastion.forwards, [`127.0.0.1:${target.port}`]);
    assert.equal(bastion.execRequests.length, 0);
    assert.equal(target.execRequests.length, 1);
  });

  it("checks the bastion's host key before tunnelling", async () => {
    const before = target.connections;
    const error = await rejectionOf(openSession(throughBastion({ bastionKey: generateKeyPair().publicKey })));
    assert.ok(isHostKeyError(error), String(error));
    assert.match(error.message, new RegExp(`^dev@127\\.0\\.0\\.1:${bastion.port}: connect to bastion for dev@127\\.0\\.0\\.1:${target.port}:`));
    assert.equal(target.connections, before);
  });

  it("checks the target's host key through the tunnel", async () => {
    const execsBefore = target.execRequests.length;
    const error = await rejectionOf(openSession(throughBastion({ targetKey: bastion.hostPublicKey })));
    assert.ok(isHostKeyError(error), String(error));
    assert.match(error.message, new RegExp(`^dev@127\\.0\\.0\\.1:${target.port}: connect via bastion dev@127\\.0\\.0\\.1:${bastion.port}:`));
    assert.equal(target.execRequests.length, execsBefore);
  });
});

describe("counting", () => {
  afterEach(() => delete process.env[TRACE_ENV]);

  it("appends one JSON line per connection and per exec, bastion hop marked, without command text", async () => {
    const bastion = await server({ allowForwarding: true });
    const target = await server();
    const tracePath = join(workDir, "trace.jsonl");
    process.env[TRACE_ENV] = tracePath;
    const statsBefore = transportStats();

    const direct = await open(connection(target));
    await direct.exec("echo secret-marker-1");
    await direct.exec("cat", { stdin: "12345" });
    const tunnelled = await open(connection(target, { proxy: connection(bastion) }));
    await tunnelled.exec("true");

    const events = readFileSync(tracePath, "utf8").trimEnd().split("\n").map((line) => JSON.parse(line) as Record<string, unknown>);
    const targetLabel = `dev@127.0.0.1:${target.port}`;
    assert.deepEqual(
      events.map(({ event, host, via, bytes }) => ({ event, host, via, bytes })),
      [
        { event: "connect", host: targetLabel, via: undefined, bytes: undefined },
        { event: "exec", host: targetLabel, via: undefined, bytes: "echo secret-marker-1".length },
        { event: "exec", host: targetLabel, via: undefined, bytes: "cat".length + 5 },
        { event: "connect", host: `dev@127.0.0.1:${bastion.port}`, via: "proxy", bytes: undefined },
        { event: "connect", host: targetLabel, via: undefined, bytes: undefined },
        { event: "exec", host: targetLabel, via: undefined, bytes: "true".length },
      ],
    );
    assert.ok(events.every((event) => event.pid === process.pid && typeof event.time === "string"));
    assert.ok(!readFileSync(tracePath, "utf8").includes("secret-marker"));
    const statsAfter = transportStats();
    assert.deepEqual({ connections: statsAfter.connections - statsBefore.connections, execs: statsAfter.execs - statsBefore.execs }, { connections: 3, execs: 3 });
  });
});
