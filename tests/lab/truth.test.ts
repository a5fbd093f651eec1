/**
 * Issue 9 on real hosts: every apply proves itself, restart-only applies compare and swap, a verification that
 * cannot finish is not a failed change, and one hanging host costs only that host. Each case failed on the main
 * before this work (an apply "converged" while another source kept the old value; both applies restarted; the
 * plan hung). Assertions read the host itself: the running RootlessKit, its InvocationID, the files.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, beforeEach, describe, it } from "node:test";

process.env.RDL_LAB = "truthtest";

import { labDown, labUp, type LabHost } from "../../lab/api";
import { runCli } from "../../provider/cli/main";
import type { PlanReport } from "../../provider/cli/run";
import * as engine from "../../provider/engine";
import { isCapabilityError, isConvergenceError } from "../../provider/errors";
import { hostLabel } from "../../provider/transport";
import { armGate, gateReached, installGate, releaseGate } from "../helpers/apply-gate";
import { hostState, lockReleased, lockWaiterSeen, startFrom, userCommand } from "../helpers/host-state";
import { assertInSync } from "../helpers/in-sync";
import { labSpec } from "../helpers/lab-spec";

const UNIT_DIR = "/home/dev/.config/systemd/user/docker.service.d";
/** Our settings, already in force: the starting point of every case. */
const START = "[Service]\nEnvironment=DOCKERD_ROOTLESS_ROOTLESSKIT_NET=slirp4netns DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER=builtin DOCKERD_ROOTLESS_ROOTLESSKIT_MTU=65520\n";
const WANTED = { networkDriver: "slirp4netns", verify: { enabled: false } };

let host: LabHost;
let other: LabHost;
const workDir = mkdtempSync(join(tmpdir(), "truthtest-"));

before(async () => {
  await labDown();
  [host, other] = await labUp({ hosts: 2 });
  await installGate(host.name);
});
after(async () => {
  await labDown();
  rmSync(workDir, { recursive: true, force: true });
});
beforeEach(() => startFrom(host, START));

const invocationId = async (lab: LabHost) => (await userCommand(lab, "systemctl --user show docker -p InvocationID --value")).trim();

describe("every apply proves itself (observation 4)", () => {
  it("an EnvironmentFile= that sets the MTU: the apply fails naming the variable and the file, never converged", async () => {
    await userCommand(
      host,
      `printf 'DOCKERD_ROOTLESS_ROOTLESSKIT_MTU=1500\\n' > ~/.config/rdn-truth.env && ` +
        `printf '[Service]\\nEnvironmentFile=%%h/.config/rdn-truth.env\\n' > ${UNIT_DIR}/zz-envfile.conf && systemctl --user daemon-reload && systemctl --user restart docker`,
    );
    try {
      assert.match((await hostState(host)).rootlesskit, /--mtu=1500/);
      // Refused before writing (the facts name the file) or failed after the apply's re-check: never "converged".
      const error = await engine.applyHost(labSpec(host, WANTED)).then(
        () => assert.fail("the apply reported success although the EnvironmentFile keeps MTU 1500"),
        (reason: Error) => reason,
      );
      assert.ok(isConvergenceError(error) || isCapabilityError(error), String(error));
      assert.match(error.message, /DOCKERD_ROOTLESS_ROOTLESSKIT_MTU/);
      assert.match(error.message, /rdn-truth\.env|EnvironmentFile/);
      assert.match((await hostState(host)).rootlesskit, /--mtu=1500/);
    } finally {
      await userCommand(host, `rm -f ${UNIT_DIR}/zz-envfile.conf ~/.config/rdn-truth.env && systemctl --user daemon-reload`);
    }
  });
});

describe("restart-only applies compare and swap (observation 9)", () => {
  it("two applies that both planned the same restart: exactly one restarts, the other plans again and finds nothing to do", async () => {
    // Written and reloaded, never restarted: both applies plan a restart and nothing else.
    const withIpv6 = `${START.trimEnd()} DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS=--ipv6\n`;
    await userCommand(host, `printf '%s' ${Buffer.from(withIpv6).toString("base64")} | base64 -d > ${UNIT_DIR}/override.conf && systemctl --user daemon-reload`);
    const spec = labSpec(host, { ...WANTED, ipv6: true });
    const planned = await engine.inspectHost(spec);
    assert.deepEqual([planned.plan.writes.length, planned.plan.restart], [0, true], JSON.stringify(planned.plan));
    const start = await invocationId(host);

    // The first holds the lock just before its restart; the second has planned on the same InvocationID meanwhile.
    await armGate(host.name, "after daemon-reload");
    const first = engine.applyHost(spec, { lockHolder: "first restart-only apply" });
    first.catch(() => undefined);
    await gateReached(host.name);
    const second = engine.applyHost(spec, { lockHolder: "second restart-only apply" });
    second.catch(() => undefined);
    await lockWaiterSeen(host);
    await releaseGate(host.name);
    const results = await Promise.all([first, second]);

    assert.deepEqual(results.map((result) => result.restarted), [true, false]);
    const end = await invocationId(host);
    assert.notEqual(end, start);
    // The daemon runs the invocation the first apply started: the second did not restart it again.
    assert.equal(end, results[0].facts.unit.invocationId);
    assert.match((await hostState(host)).rootlesskit, / --ipv6\b/);
    await assertInSync(spec, results[1]);
  });
});

describe("bounded everywhere (observations 10 and 11)", () => {
  it("a host that hangs in its facts costs that host only: the CLI plan of two hosts reports the other, and names host, step and time for the hung one", async () => {
    const file = join(workDir, "hosts.yaml");
    writeFileSync(file, JSON.stringify({ defaults: { ...WANTED, timeouts: { factsSeconds: 5 } } }));
    await armGate(host.name, "facts");
    let stdout = "";
    try {
      const code = await runCli(["plan", "--lab", "--hosts", file, "--json"], { stdout: (text) => (stdout += text), stderr: () => undefined, interactive: false, engine });
      assert.equal(code, 1, stdout);
    } finally {
      await releaseGate(host.name);
    }
    const report = JSON.parse(stdout) as PlanReport;
    const hung = report.hosts.find((row) => row.name === host.name);
    const fine = report.hosts.find((row) => row.name === other.name);
    assert.equal(hung?.status, "error");
    assert.equal(hung?.error?.type, "RemoteTimeoutError");
    const label = hostLabel({ user: host.user, host: host.address, port: host.port });
    assert.match(JSON.stringify(hung?.error), /no answer within 5 s/);
    assert.ok(JSON.stringify(hung?.error).includes(label), JSON.stringify(hung?.error));
    assert.ok(fine && fine.status !== "error" && fine.host !== undefined, JSON.stringify(fine));
  });

  it("verify.required false: a verification that cannot finish is reachable: false with the reason, and the apply succeeds", async () => {
    const spec = labSpec(host, { networkDriver: "slirp4netns", verify: { targets: [{ address: host.target.ipv6, tcpPort: host.target.ipv6TcpPort }], timeoutSeconds: 3 }, timeouts: { verifySeconds: 8 } });
    await armGate(host.name, "verify");
    try {
      const result = await engine.applyHost(spec);
      assert.equal(result.verification?.reachable, false);
      assert.equal(result.verification?.diagnosis, "verification-unfinished");
      assert.match(result.verification?.detail ?? "", /verify: no answer within 8 s/);
      // Nothing is known of the namespace, and no bridge container was to be probed (no containerIpv6).
      assert.equal(result.verification?.covers, "namespace");
      assert.equal(result.verification?.namespace.diagnosis, "verification-unfinished");
      assert.equal(result.verification?.container, null);
      await assertInSync(spec, result);
    } finally {
      await releaseGate(host.name);
      await lockReleased(host);
    }
  });
});
