/**
 * Failures halfway (issue 4, points 1 and 4) on real lab hosts: host keys, a daemon that does not come back,
 * a required verification that fails, the SSH connection cut at each step of the apply, and dead hosts.
 * After each, the host must be where it started or fully applied, never in between.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, beforeEach, describe, it } from "node:test";

// Its own lab instance, so the other lab tests and a demo lab can run beside it.
process.env.RDL_LAB = "failtest";

import { labDown, labUp, startSshd, stopSshd, type LabHost } from "../../lab/api";
import { runCli } from "../../provider/cli/main";
import type { NetworkSpec } from "../../provider/core/types";
import * as engine from "../../provider/engine";
import { isConnectionError, isHostKeyError, isRollbackError, isVerificationError } from "../../provider/errors";
import { hostLabel, TRACE_ENV } from "../../provider/transport";
import { armGate, GATE_POINTS, gateReached, installGate, killSshSession, releaseGate, type GatePoint } from "../helpers/apply-gate";
import { hostState, lockReleased, startFrom } from "../helpers/host-state";
import { assertInSync } from "../helpers/in-sync";
import { labInputs, labSpec } from "../helpers/lab-spec";
import { rejectionOf } from "../helpers/rejection";

/** Our variable plus text that is not ours: a rollback must bring back every byte of it. */
const HAND_WRITTEN = "# written by hand; keep this comment\n[Service]\nEnvironment=\"DOCKERD_ROOTLESS_ROOTLESSKIT_MTU=65520\"   \nEnvironment=KEEP_ME=1\n";
/** What the tests apply: it shows in the running RootlessKit's command line as `--ipv6`. */
const WANTED = { networkDriver: "slirp4netns", ipv6: true };

let host: LabHost;
let other: LabHost;
const workDir = mkdtempSync(join(tmpdir(), "failtest-"));
let tracePath: string;

before(async () => {
  await labDown(); // leftovers of an interrupted run
  [host, other] = await labUp({ hosts: 2 });
  await installGate(host.name);
});
after(async () => {
  await labDown();
  rmSync(workDir, { recursive: true, force: true });
});
beforeEach((context) => {
  tracePath = join(workDir, `${context.name.replace(/\W+/g, "-")}.trace`);
  writeFileSync(tracePath, "");
  process.env[TRACE_ENV] = tracePath;
});

const label = (lab: LabHost) => hostLabel({ user: lab.user, host: lab.address, port: lab.port });

function traceEvents(): Array<{ event: string; host: string; via?: string }> {
  const text = readFileSync(tracePath, "utf8").trim();
  return text === "" ? [] : text.split("\n").map((line) => JSON.parse(line));
}

function specWith(lab: LabHost, connection: Record<string, unknown>, overrides: Record<string, unknown> = {}): NetworkSpec {
  const inputs = labInputs(lab);
  return labSpec(lab, { ...WANTED, verify: { enabled: false }, ...overrides, connection: { ...(inputs.connection as object), ...connection } });
}

describe("host keys", () => {
  it("a changed pinned key stops before any command: one connect, zero execs, drop-in unchanged, the offered key and how to pin it shown", async () => {
    const start = await startFrom(host, HAND_WRITTEN);
    const error = await rejectionOf(engine.applyHost(specWith(host, { hostKey: other.hostPublicKey })));
    assert.ok(isHostKeyError(error), String(error));
    const offeredBase64 = host.hostPublicKey.split(" ")[1]!;
    assert.ok(error.message.includes(`hostKey: "ssh-ed25519 ${offeredBase64}"`), error.message);
    assert.match(error.message, /man-in-the-middle/);
    assert.deepEqual(traceEvents().map((event) => event.event), ["connect"]);
    assert.deepEqual(await hostState(host), start);
  });

  it("an unknown host (not in known_hosts) stops before any command and shows the known_hosts line to add, which then works", async () => {
    const knownHosts = join(workDir, "known_hosts");
    writeFileSync(knownHosts, `${other.address} ${other.hostPublicKey}\n`);
    const connection = { hostKey: undefined, knownHostsPath: knownHosts };
    const error = await rejectionOf(engine.inspectHost(specWith(host, connection)));
    assert.ok(isHostKeyError(error), String(error));
    const line = `${host.address} ${host.hostPublicKey}`;
    assert.ok(error.message.includes(line), error.message);
    assert.deepEqual(traceEvents().map((event) => event.event), ["connect"]);

    writeFileSync(knownHosts, `${line}\n`, { flag: "a" });
    const inspected = await engine.inspectHost(specWith(host, connection));
    assert.equal(inspected.host, label(host));
  });

  it("dangerouslySkipHostKeyVerification warns on every use", async () => {
    const spec = specWith(host, { hostKey: undefined, dangerouslySkipHostKeyVerification: true });
    for (let use = 1; use <= 2; use += 1) {
      const warnings: string[] = [];
      await engine.inspectHost(spec, { onWarning: (warning) => warnings.push(warning) });
      assert.equal(warnings.filter((warning) => /WARNING: host-key verification is off/.test(warning)).length, 1, `use ${use}: ${warnings.join("\n")}`);
    }
  });

  it("a bastion with a changed key stops before the target is dialed", async () => {
    const proxy = { ...(labInputs(other).connection as object), hostKey: host.hostPublicKey };
    const error = await rejectionOf(engine.inspectHost(specWith(host, { proxy })));
    assert.ok(isHostKeyError(error), String(error));
    assert.equal(error.host, label(other));
    assert.deepEqual(
      traceEvents().map((event) => [event.event, event.host, event.via]),
      [["connect", label(other), "proxy"]],
    );
  });
});

describe("rollback", () => {
  it("a daemon that does not become active after the restart: RollbackError with journal lines, the drop-in restored byte for byte, the daemon active on the old settings", async () => {
    const start = await startFrom(host, HAND_WRITTEN);
    const error = await rejectionOf(engine.applyHost(specWith(host, {}, { extraFlags: ["--rdl-flag-rootlesskit-rejects"] })));
    assert.ok(isRollbackError(error), String(error));
    assert.ok(
      error.evidence.some((line) => line.includes("rdl-flag-rootlesskit-rejects")),
      `the journal lines do not explain the failure:\n${error.evidence.join("\n")}`,
    );
    assert.deepEqual(await hostState(host), start);
  });

  it("verify.required with an unreachable target: VerificationError, the previous drop-in restored and the daemon restarted on it", async () => {
    const start = await startFrom(host, HAND_WRITTEN);
    // Nothing listens on port 9 of the lab's target, so the TCP probe is refused.
    const verify = { required: true, timeoutSeconds: 5, targets: [{ address: host.target.ipv6, tcpPort: 9, icmp: false }] };
    const error = await rejectionOf(engine.applyHost(specWith(host, {}, { verify })));
    assert.ok(isVerificationError(error), String(error));
    assert.match(error.message, /previous files were restored and the daemon restarted on them/);
    const end = await hostState(host);
    assert.deepEqual(end, start);
  });
});

describe("the SSH connection cut at each step", () => {
  for (const point of Object.keys(GATE_POINTS) as GatePoint[]) {
    it(`${point}: the host ends unchanged or fully applied, and the next apply converges`, async () => {
      const start = await startFrom(host, HAND_WRITTEN);
      assert.doesNotMatch(start.rootlesskit, /--ipv6/);
      const spec = specWith(host, {});
      await armGate(host.name, point);
      const applying = rejectionOf(engine.applyHost(spec));
      try {
        await killSshSession(host.name, await gateReached(host.name));
        const error = await applying;
        assert.ok(isConnectionError(error), String(error));
      } finally {
        // A held gate keeps the lock: release it whatever happened, or every later test waits on it.
        await releaseGate(host.name);
      }
      await lockReleased(host);

      const end = await hostState(host);
      assert.equal(end.active, "active");
      const unchanged = end.dropIn === start.dropIn && end.rootlesskit === start.rootlesskit;
      const inspected = await engine.inspectHost(spec);
      const fullyApplied = !inspected.plan.differs && /--ipv6/.test(end.rootlesskit);
      assert.ok(unchanged || fullyApplied, `half state after a cut ${point}: ${JSON.stringify(end)}\nplan: ${JSON.stringify(inspected.plan.changes)}`);

      await assertInSync(spec, await engine.applyHost(spec));
    });
  }
});

describe("unreachable hosts", () => {
  it("bounded dial retries, then a ConnectionError naming the host and the last cause; one dead host does not stop the fleet plan", async () => {
    await stopSshd(other.name);
    try {
      const error = await rejectionOf(engine.inspectHost(specWith(other, { dialErrorLimit: 3, perDialTimeout: 2 })));
      assert.ok(isConnectionError(error), String(error));
      assert.ok(error.message.startsWith(`${label(other)}: connect:`), error.message);
      assert.match(error.message, /after 3 attempts.*ECONNREFUSED/s);
      assert.equal(error.evidence.length, 3);

      const defaults = join(workDir, "fleet.yaml");
      writeFileSync(defaults, JSON.stringify({ defaults: { ...WANTED, connection: { dialErrorLimit: 2, perDialTimeout: 2 } } }));
      let stdout = "";
      const code = await runCli(["plan", "--lab", "--hosts", defaults, "--json"], { stdout: (text) => (stdout += text), stderr: () => undefined, interactive: false, engine });
      const report = JSON.parse(stdout) as { hosts: Array<{ name: string; status: string; host?: string; error?: { type: string; message: string } }> };
      assert.equal(code, 1);
      const dead = report.hosts.find((row) => row.name === other.name);
      const alive = report.hosts.find((row) => row.name === host.name);
      assert.equal(dead?.status, "error");
      assert.equal(dead?.error?.type, "ConnectionError");
      assert.ok(alive && alive.status !== "error" && alive.host === label(host), JSON.stringify(alive));
    } finally {
      await startSshd(other.name);
    }
  });
});
