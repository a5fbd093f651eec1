/**
 * Every remote step of the engine has a time limit: against an SSH server that accepts each command and never
 * ends it, inspect and apply fail with a RemoteTimeoutError that names the host, the step and the time waited.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { validateNetworkArgs } from "../../provider/core/schema";
import type { NetworkSpec } from "../../provider/core/types";
import { applyHost, inspectHost } from "../../provider/engine";
import { isRemoteTimeoutError } from "../../provider/errors";
import { generateKeyPair, startSshServer, type TestSshServer } from "../helpers/ssh-server";

delete process.env.SSH_AUTH_SOCK;

describe("time limits of remote steps", { timeout: 120_000 }, () => {
  const key = generateKeyPair();
  let hung: TestSshServer;
  const spec = (timeouts: Record<string, number>): NetworkSpec => {
    const validation = validateNetworkArgs({
      connection: { host: "127.0.0.1", port: hung.port, user: "dev", privateKey: key.privateKey, hostKey: hung.hostPublicKey, dialErrorLimit: 1 },
      networkDriver: "slirp4netns",
      timeouts,
    });
    if (!validation.ok) throw new Error(JSON.stringify(validation.problems));
    return validation.value;
  };

  before(async () => {
    hung = await startSshServer({ authorizedKey: key.publicKey, hangOnExec: true });
  });
  after(() => hung.close());

  for (const [name, run] of [
    ["inspect (plan, diff, read)", inspectHost],
    ["apply", applyHost],
  ] as const) {
    it(`${name}: a host that never answers fails its facts step after timeouts.factsSeconds, naming host, step and time`, async () => {
      const execsBefore = hung.execRequests.length;
      await assert.rejects(run(spec({ factsSeconds: 5 })), (error: unknown) => {
        assert.ok(isRemoteTimeoutError(error), String(error));
        assert.match(error.message, new RegExp(`^dev@127\\.0\\.0\\.1:${hung.port}: gather facts: no answer within 5 s`));
        assert.match(error.message, /raise timeouts\.factsSeconds \(now 5\)/);
        assert.equal(error.step, "gather facts");
        return true;
      });
      assert.equal(hung.execRequests.length, execsBefore + 1, "one exec, and nothing after it timed out");
    });
  }
});
