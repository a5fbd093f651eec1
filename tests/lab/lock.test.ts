/**
 * Two applies against one host at the same time (issue 4, point 4): the host lock serializes them. The
 * first apply is held mid-way by the apply gate, so the second one provably meets a held lock; it must wait
 * there without touching the host, then either refuse a plan the first made stale or apply after it; with a
 * short wait it fails naming the holder.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, beforeEach, it } from "node:test";

process.env.RDL_LAB = "locktest";

import { labDown, labUp, type LabHost } from "../../lab/api";
import { runCli } from "../../provider/cli/main";
import type { ApplyReport } from "../../provider/cli/run";
import * as engine from "../../provider/engine";
import type { ApplyResult } from "../../provider/engine/types";
import { isLockTimeoutError } from "../../provider/errors";
import { armGate, gateReached, installGate, releaseGate, type GatePoint } from "../helpers/apply-gate";
import { hostState, lockWaiterSeen, startFrom, type HostState } from "../helpers/host-state";
import { assertInSync, assertReportInSync } from "../helpers/in-sync";
import { labSpec } from "../helpers/lab-spec";

const START = "[Service]\nEnvironment=DOCKERD_ROOTLESS_ROOTLESSKIT_MTU=65520\n";
const WANTED = { networkDriver: "slirp4netns", ipv6: true };

let host: LabHost;

before(async () => {
  await labDown();
  [host] = await labUp({ hosts: 1 });
  await installGate(host.name);
});
after(() => labDown());

beforeEach(() => startFrom(host, START));

/** Starts an apply that takes the host lock and then stops at `point` until released; returns the host as it is held. */
async function holdLockWithApply(holder: string, point: GatePoint): Promise<{ done: Promise<ApplyResult>; heldState: HostState }> {
  await armGate(host.name, point);
  const done = engine.applyHost(labSpec(host, { ...WANTED, verify: { enabled: false } }), { lockHolder: holder });
  done.catch(() => undefined); // awaited by the caller; this only keeps an early failure from being unhandled
  await gateReached(host.name);
  return { done, heldState: await hostState(host) };
}

function settled<T>(promise: Promise<T>): { promise: Promise<T>; readonly isSettled: boolean } {
  const tracker = { promise, isSettled: false };
  promise.then(
    () => (tracker.isSettled = true),
    () => (tracker.isSettled = true),
  );
  return tracker;
}

it("two engine applies at once: the second waits for the lock without touching the host, then plans again on what the first left", async () => {
  // Held before its write: the second apply plans on the file the first is about to replace.
  const first = await holdLockWithApply("first apply (lock test)", "before write");
  const second = settled(engine.applyHost(labSpec(host, { ...WANTED, mtu: 1500, verify: { enabled: false } }), { lockHolder: "second apply (lock test)", lockWaitSeconds: 120 }));
  await lockWaiterSeen(host);
  assert.equal(second.isSettled, false, "the second apply finished while the first held the lock");
  assert.deepEqual(await hostState(host), first.heldState, "the second apply changed the host while the first held the lock");

  await releaseGate(host.name);
  const firstResult = await first.done;
  assert.equal(firstResult.restarted, true);
  // The first apply proved itself under the lock, before the second could change anything.
  assert.deepEqual(firstResult.postPlan.changes, []);
  // Its first plan was made on the file the first apply then replaced: compare-and-swap refuses it, and the
  // second apply plans again on the first one's result instead of writing over it blindly.
  const result = await second.promise;
  await assertInSync(labSpec(host, { ...WANTED, mtu: 1500, verify: { enabled: false } }), result);
  assert.equal(result.restarted, true);
  const final = await hostState(host);
  assert.match(final.dropIn ?? "", /DOCKERD_ROOTLESS_ROOTLESSKIT_MTU=1500/);
  assert.match(final.dropIn ?? "", /DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS=--ipv6/);
  assert.match(final.rootlesskit, /--mtu=1500/);
});

it("with a short lock wait the second apply fails with LockTimeoutError naming the holder, and changes nothing", async () => {
  const first = await holdLockWithApply("stack-A pulumi up (lock test)", "after write");
  try {
    const error = await engine.applyHost(labSpec(host, { ...WANTED, mtu: 1500, verify: { enabled: false } }), { lockWaitSeconds: 2 }).then(
      () => assert.fail("the second apply ran while the lock was held"),
      (reason: Error) => reason,
    );
    assert.ok(isLockTimeoutError(error), String(error));
    assert.match(error.message, /stack-A pulumi up \(lock test\)/);
    assert.deepEqual(await hostState(host), first.heldState);
  } finally {
    await releaseGate(host.name);
  }
  await assertInSync(labSpec(host, { ...WANTED, verify: { enabled: false } }), await first.done);
});

it("a CLI apply beside an engine apply waits for the lock, then applies after it", async () => {
  // Held after its write: the CLI plans on the first apply's file, so once it gets the lock its plan is current.
  const first = await holdLockWithApply("pulumi up beside the CLI (lock test)", "after write");
  const cliSettings = { ...WANTED, mtu: 1500, verify: { enabled: false } };
  const dir = mkdtempSync(join(tmpdir(), "locktest-"));
  const defaults = join(dir, "hosts.yaml");
  writeFileSync(defaults, JSON.stringify({ defaults: cliSettings }));
  let stdout = "";
  const cli = settled(runCli(["apply", "--lab", "--hosts", defaults, "--json"], { stdout: (text) => (stdout += text), stderr: () => undefined, interactive: false, engine }));
  await lockWaiterSeen(host);
  assert.equal(cli.isSettled, false, "the CLI finished while the lock was held");
  assert.deepEqual(await hostState(host), first.heldState, "the CLI changed the host while the lock was held");

  await releaseGate(host.name);
  assert.equal((await first.done).restarted, true);
  const code = await cli.promise;
  rmSync(dir, { recursive: true, force: true });
  assert.equal(code, 0, stdout);
  assert.equal((JSON.parse(stdout) as ApplyReport).hosts[0]?.status, "converged");
  assertReportInSync(JSON.parse(stdout) as ApplyReport);
  const end = await hostState(host);
  assert.match(end.rootlesskit, /--mtu=1500 .*--ipv6|--ipv6.*--mtu=1500/);
  await assertInSync(labSpec(host, cliSettings));
});
