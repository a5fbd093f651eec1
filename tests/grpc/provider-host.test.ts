/**
 * The provider as the Pulumi engine runs it: serialized by the resource, loaded by the real dynamic-provider host,
 * driven over gRPC. None of these tests needs a lab host: failures go to a closed loopback port.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { unknownValue } from "@pulumi/pulumi/runtime/rpc";
import { RootlessDockerNetwork } from "../../provider";
import { installedPackage, PROJECT_ROOT, ProviderHostCallError, RESOURCE_TYPE, startProviderHost, type ProviderHost } from "../helpers/provider-host";
import { closedPort } from "../helpers/ports";

const PASSWORD = "correct-horse-battery-staple-91";
const PRIVATE_KEY = generateKeyPairSync("rsa", {
  modulusLength: 2048,
  privateKeyEncoding: { type: "pkcs1", format: "pem" },
  publicKeyEncoding: { type: "spki", format: "pem" },
}).privateKey;
/** A line of the key's body: if it shows up anywhere, the key leaked. */
const KEY_MATERIAL = PRIVATE_KEY.split("\n")[5];


/** A loopback port that accepts TCP connections, counts them and hangs up at once (no SSH). */
async function countingListener(): Promise<{ port: number; accepted: () => number; close: () => Promise<void> }> {
  let accepted = 0;
  const server: Server = createServer((socket) => {
    accepted += 1;
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as { port: number }).port,
    accepted: () => accepted,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function assertNoCredential(text: string, where: string): void {
  assert.ok(!text.includes(PASSWORD), `${where} contains the password`);
  assert.ok(!text.includes(KEY_MATERIAL), `${where} contains private key material`);
}

describe("dynamic-provider host over gRPC (no lab host)", () => {
  let host: ProviderHost;
  let traceDir: string;
  let tracePath: string;
  let listener: Awaited<ReturnType<typeof countingListener>>;

  before(async () => {
    traceDir = mkdtempSync(join(tmpdir(), "rootless-docker-trace-"));
    tracePath = join(traceDir, "trace.jsonl");
    listener = await countingListener();
    host = await startProviderHost({ env: { ROOTLESS_DOCKER_NET_TRACE: tracePath } });
    await host.configure();
  });

  after(async () => {
    await host?.stop();
    await listener?.close();
    rmSync(traceDir, { recursive: true, force: true });
  });

  /** Inputs whose host is the counting listener: any connection attempt shows in `listener.accepted()`. */
  const listenerInputs = (overrides: Record<string, unknown> = {}) => ({
    connection: { host: "127.0.0.1", port: listener.port, user: "alice", password: PASSWORD, dialErrorLimit: 1, perDialTimeout: 2 },
    networkDriver: "pasta",
    ...overrides,
  });

  /** Connections the provider opened to a port, as its transport traced them. */
  const connectEvents = (port: number) =>
    existsSync(tracePath)
      ? readFileSync(tracePath, "utf8")
          .split("\n")
          .filter((line) => line !== "")
          .map((line) => JSON.parse(line) as { event: string; host: string })
          .filter((event) => event.event === "connect" && event.host.endsWith(`:${port}`)).length
      : 0;

  it("Configure: the host refuses secrets and preview, so the engine strips secrets and never creates in preview", async () => {
    assert.deepEqual(await host.configure(), { acceptSecrets: false, supportsPreview: false, acceptResources: false, acceptOutputs: false });
  });

  it("Check: returns every problem with its property path, and the inputs with every key", async () => {
    const news = {
      connection: { host: "127.0.0.1", user: "dev", port: 70000, password: PASSWORD },
      networkDriver: "pasta",
      portDriver: "builtin",
      extraFlags: ["--mtu=1500", "not-a-flag"],
      verfiy: { enabled: false },
    };
    const { inputs, failures } = await host.check({}, news);
    assert.deepEqual(failures.map((failure) => failure.property).sort(), ["connection.port", "extraFlags[0]", "extraFlags[1]", "portDriver", "verfiy"]);
    assert.match(failures.find((failure) => failure.property === "portDriver")!.reason, /"implicit", "none"/);
    assert.deepEqual(inputs, { ...news, __provider: host.providerText });
  });

  it("Check: unknown values (preview) pass unjudged and come back as they were", async () => {
    const news = { connection: unknownValue, networkDriver: "pasta", ipv6: unknownValue, mtu: 1400 };
    const { inputs, failures } = await host.check({}, news);
    assert.deepEqual(failures, []);
    assert.equal(inputs.connection, unknownValue);
    assert.equal(inputs.ipv6, unknownValue);
  });

  it("Diff: unknown inputs report a change without connecting to the host", async () => {
    const before = listener.accepted();
    const reply = await host.diff("id", listenerInputs(), listenerInputs({ ipv6: unknownValue }));
    assert.deepEqual(reply, { changes: "some", replaces: [], deleteBeforeReplace: false });
    assert.equal(listener.accepted() - before, 0);
  });

  it("Diff: another login or drop-in replaces the resource, without connecting", async () => {
    const before = listener.accepted();
    const olds = listenerInputs();
    const moved = await host.diff("id", olds, listenerInputs({ connection: { ...olds.connection, user: "bob" } }));
    assert.deepEqual(moved, { changes: "some", replaces: ["connection"], deleteBeforeReplace: false });
    const renamed = await host.diff("id", olds, listenerInputs({ dropInName: "20-network.conf" }));
    assert.deepEqual(renamed.replaces, ["dropInName"]);
    assert.equal(listener.accepted() - before, 0);
  });

  it("Diff with known inputs connects once, and the host process traces it (the env reaches the host)", async () => {
    const before = { accepted: listener.accepted(), traced: connectEvents(listener.port) };
    await assert.rejects(host.diff("id", listenerInputs(), listenerInputs()), ProviderHostCallError);
    assert.equal(listener.accepted() - before.accepted, 1);
    assert.equal(connectEvents(listener.port) - before.traced, 1);
  });

  const rollout = { fleet: "edge", host: "web3", waves: [["web1"], ["web2", "web3", "web4"], ["web5", "web6"]] };

  it("Diff: a change of only `rollout` is no input change: it takes the same path as unchanged inputs", async () => {
    const olds = listenerInputs({ rollout: { ...rollout, waves: [["web3"]] } });
    const outcome = async (news: Record<string, unknown>) => {
      const before = listener.accepted();
      const reply = await host.diff("id", olds, news).catch((error: unknown) => error);
      // The socket-level cause of the hang-up varies between runs (ECONNRESET or "lost before handshake"): not compared.
      const details = reply instanceof ProviderHostCallError ? reply.details.split("\n")[0].replace(/; last error: .*$/, "") : reply;
      return { accepted: listener.accepted() - before, details };
    };
    // Known inputs are compared with the host (one connection; this one hangs up): a rollout change adds nothing to it.
    assert.deepEqual(await outcome(listenerInputs({ rollout })), await outcome(olds));
    const moved = await host.diff("id", olds, listenerInputs({ rollout, connection: { ...olds.connection, user: "bob" } }));
    assert.deepEqual(moved.replaces, ["connection"]);
  });

  it("in this package's own checkout (the repository's root Pulumi project) the shim finds the compiled provider", async () => {
    const checkout = await startProviderHost({ asInstalled: false });
    try {
      await checkout.configure();
      const port = await closedPort();
      const inputs = { connection: { host: "127.0.0.1", port, user: "alice", password: PASSWORD, dialErrorLimit: 1, perDialTimeout: 2 }, networkDriver: "pasta" };
      assert.deepEqual((await checkout.check({}, { ...inputs, portDriver: "builtin" })).failures.map((failure) => failure.property), ["portDriver"]);
      await assert.rejects(checkout.create(inputs), (error: unknown) => error instanceof ProviderHostCallError && /connect: /.test(error.details));
    } finally {
      await checkout.stop();
    }
  });

  it("Create of a fleet host that fails says which hosts are done, failed and untouched, in the host's typed error", async () => {
    const port = await closedPort();
    const inputs = {
      connection: { host: "127.0.0.1", port, user: "alice", password: PASSWORD, dialErrorLimit: 1, perDialTimeout: 2 },
      networkDriver: "pasta",
      rollout,
    };
    assert.deepEqual((await host.check({}, inputs)).failures, []);
    await assert.rejects(host.create(inputs), (error: unknown) => {
      assert.ok(error instanceof ProviderHostCallError);
      assert.match(error.details, new RegExp(`^alice@127\\.0\\.0\\.1:${port}: connect: `));
      assert.match(
        error.details,
        /\n  fleet edge: wave 2 of 3 failed at web3, later waves are not started: done: web1; failed: web3; untouched: web5, web6; still finishing in the same wave: web2, web4$/,
      );
      assertNoCredential(error.details, "Create's error");
      return true;
    });
  });

  it("Diff, Read and Create against an unreachable host fail with a message naming the host and no credential", async () => {
    const port = await closedPort();
    const inputs = {
      connection: { host: "127.0.0.1", port, user: "alice", privateKey: PRIVATE_KEY, password: PASSWORD, dialErrorLimit: 1, perDialTimeout: 2 },
      networkDriver: "slirp4netns",
      ipv6: true,
    };
    const failures: ProviderHostCallError[] = [];
    for (const attempt of [() => host.diff("id", inputs, inputs), () => host.read("id", inputs, inputs), () => host.create(inputs)]) {
      await assert.rejects(attempt(), (error: unknown) => {
        assert.ok(error instanceof ProviderHostCallError);
        failures.push(error);
        return true;
      });
    }
    assert.deepEqual(failures.map((failure) => failure.method), ["Diff", "Read", "Create"]);
    for (const failure of failures) {
      assert.match(failure.details, new RegExp(`alice@127\\.0\\.0\\.1:${port}: connect: `), `${failure.method}: ${failure.details}`);
      assert.match(failure.details, /fix: /, `${failure.method} names a fix`);
      assertNoCredential(failure.details, `${failure.method}'s error`);
    }
    assertNoCredential(host.stderr(), "the host's log");
  });
});

describe("the serialized provider of RootlessDockerNetwork", () => {
  let registered: pulumi.runtime.MockResourceArgs | undefined;

  before(async () => {
    await pulumi.runtime.setMocks(
      {
        newResource: (args) => {
          registered = args;
          return { id: "mock-id", state: args.inputs };
        },
        call: () => ({}),
      },
      "project",
      "stack",
      true,
    );
    const network = new RootlessDockerNetwork("web1", {
      connection: { host: "192.0.2.10", user: "alice", privateKey: PRIVATE_KEY, password: PASSWORD },
      networkDriver: "pasta",
      ipv6: true,
    });
    await new Promise<void>((resolve) => network.urn.apply(() => resolve()));
  });

  it("registers the documented type token with the inputs and the provider text", () => {
    assert.equal(registered?.type, RESOURCE_TYPE);
    assert.equal(registered?.inputs.networkDriver, "pasta");
    assert.equal(typeof registered?.inputs.__provider, "string");
  });

  it("captures no credential: the text only requires the installed package", () => {
    const text: string = registered!.inputs.__provider;
    assertNoCredential(text, "__provider");
    assert.match(text, /require\("pulumi-rootless-docker\/dynamic"\)/);
  });

  it("loads in a fresh node process from the project directory, and its check works", () => {
    const installed = installedPackage();
    try {
      const script = `
        const text = require("fs").readFileSync(0, "utf8");
        const provider = require("require-from-string")(text).handler();
        provider.check({}, { connection: { host: "127.0.0.1", user: "dev", port: 0, password: "x" }, networkDriver: "vpnkit", ipv6: true })
          .then((result) => process.stdout.write(JSON.stringify(result.failures)));`;
      const run = spawnSync(process.execPath, ["-e", script], {
        cwd: PROJECT_ROOT,
        input: registered!.inputs.__provider,
        env: { ...process.env, ...installed.env },
        encoding: "utf8",
      });
      assert.equal(run.status, 0, run.stderr);
      const properties = (JSON.parse(run.stdout) as { property: string }[]).map((failure) => failure.property).sort();
      assert.deepEqual(properties, ["connection.port", "ipv6"]);
    } finally {
      installed.remove();
    }
  });
});
