/**
 * Issue 9 items 2 and 3 and the manager's environment, on real hosts: the running level is what RootlessKit parsed
 * (the last --mtu wins), an input the host's own dockerd-rootless.sh does not read is refused before anything is
 * written, the manager's environment cannot keep a flag that was declared off, and moby's Docker 29.5+ script (Go
 * module proxy) is read for what it does. Every assertion reads the host: /proc's argv, the files, the InvocationID.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

process.env.RDL_LAB = "scripttruth";

import { installMobyDockerdOn, installRootlessScriptOn, labDown, labUp, type LabHost } from "../../lab/api";
import { observedInputs } from "../../provider/core/plan";
import * as engine from "../../provider/engine";
import type { NetworkSpec } from "../../provider/core/types";
import { isCapabilityError } from "../../provider/errors";
import { hostState, startFrom, userCommand } from "../helpers/host-state";
import { assertInSync } from "../helpers/in-sync";
import { labSpec } from "../helpers/lab-spec";
import { MOBY, ROOTLESSKIT_3_0 } from "../helpers/lab-versions";

const START = "[Service]\nEnvironment=DOCKERD_ROOTLESS_ROOTLESSKIT_NET=slirp4netns DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER=builtin DOCKERD_ROOTLESS_ROOTLESSKIT_MTU=65520\n";
const QUIET = { verify: { enabled: false } };

let trixie: LabHost;
let forky: LabHost;

before(async () => {
  await labDown();
  [trixie] = await labUp({ profile: "trixie" });
  [forky] = await labUp({ profile: "forky", rootlesskit: ROOTLESSKIT_3_0 });
});
after(() => labDown());

const invocationId = async (lab: LabHost) => (await userCommand(lab, "systemctl --user show docker -p InvocationID --value")).trim();
/** An apply that restarts once and ends in sync, then a second that does not restart (same InvocationID); the host as it is then. */
async function convergesWithOneRestart(lab: LabHost, spec: NetworkSpec) {
  const first = await engine.applyHost(spec);
  assert.equal(first.restarted, true);
  const state = await hostState(lab);
  assert.equal(state.active, "active");
  await assertInSync(spec, first);
  const invocation = await invocationId(lab);
  const second = await engine.applyHost(spec);
  assert.equal(second.restarted, false);
  assert.equal(await invocationId(lab), invocation, "a second apply does not restart");
  return { first, state, inspected: await engine.inspectHost(spec) };
}

/** RootlessKit's own words (before the child command) as /proc shows them. */
const mtus = (argv: string) => [...argv.matchAll(/--mtu=(\d+)/g)].map((match) => match[1]);

describe("the running level is what RootlessKit parsed (issue 9 item 3)", () => {
  it("a hand-written drop-in whose FLAGS end with --mtu=1500: RootlessKit runs 1500, the plan says so naming the source, and the apply ends on 65520", async () => {
    const handWritten = `[Service]\nEnvironment=DOCKERD_ROOTLESS_ROOTLESSKIT_NET=slirp4netns DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER=builtin DOCKERD_ROOTLESS_ROOTLESSKIT_MTU=65520\nEnvironment="DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS=--ipv6 --mtu=1500"\n`;
    const before = await startFrom(trixie, handWritten);
    // The script's own --mtu=65520 first, FLAGS' --mtu=1500 last: RootlessKit takes the last.
    assert.deepEqual(mtus(before.rootlesskit), ["65520", "1500"]);
    const tap0 = await userCommand(trixie, `nsenter -U --preserve-credentials -n -t $(cat $XDG_RUNTIME_DIR/dockerd-rootless/child_pid) ip -o link show tap0`);
    assert.match(tap0, / mtu 1500 /, "the namespace's tap0 really has MTU 1500");

    const spec = labSpec(trixie, { networkDriver: "slirp4netns", ipv6: true, ...QUIET });
    const { plan, running } = await engine.inspectHost(spec);
    assert.equal(running.mtu, 1500);
    const mtu = plan.changes.find((change) => change.level === "running" && change.property === "DOCKERD_ROOTLESS_ROOTLESSKIT_MTU");
    assert.ok(mtu, JSON.stringify(plan.changes));
    assert.deepEqual([mtu.desired, mtu.actual], ["65520", "1500"]);
    assert.match(mtu.cause ?? "", /the last --mtu on its command line, from the DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS it was started with \("--ipv6 --mtu=1500", set by .*override\.conf:3\)/);

    const result = await engine.applyHost(spec);
    assert.equal(result.restarted, true);
    const afterApply = await hostState(trixie);
    assert.deepEqual(mtus(afterApply.rootlesskit), ["65520"]);
    assert.match(afterApply.rootlesskit, / --ipv6 /);
    await assertInSync(spec, result);
  });
});

describe("ask the host what its script honours (issue 9 item 2)", () => {
  it("trixie (Docker 26.1.5): detachNetns true is a capability error before anything is written", async () => {
    await startFrom(trixie, START);
    const [dropIn, invocation] = [(await hostState(trixie)).dropIn, await invocationId(trixie)];
    const error = await engine.applyHost(labSpec(trixie, { networkDriver: "slirp4netns", detachNetns: true, ...QUIET })).then(
      () => assert.fail("the apply succeeded although Docker 26.1.5's script does not read DETACH_NETNS"),
      (reason: Error) => reason,
    );
    assert.ok(isCapabilityError(error), String(error));
    assert.match(error.message, /Docker 26\.1\.5\S*'s dockerd-rootless\.sh \(\/usr\/share\/docker\.io\/contrib\/dockerd-rootless\.sh\) does not read DOCKERD_ROOTLESS_ROOTLESSKIT_DETACH_NETNS/);
    assert.match(error.message, /extraFlags: \["--detach-netns"\]/);
    assert.equal((await hostState(trixie)).dropIn, dropIn, "the drop-in is byte for byte as it was");
    assert.equal(await invocationId(trixie), invocation, "the daemon was not restarted");
  });

  it(`forky with moby's ${MOBY} script (Docker 29.5+) and RootlessKit ${ROOTLESSKIT_3_0}: DETACH_NETNS is read, and the script's own --detach-netns is what the plan expects`, async () => {
    await startFrom(forky, START);
    await installRootlessScriptOn(forky.name, MOBY);
    // Docker 28.5.2's dockerd cannot run in a detached namespace (no rootless.DetachedNetNS before moby v2): the script's
    // default would stop the daemon, so the host declares detachNetns false, which this script reads.
    const spec = labSpec(forky, { networkDriver: "pasta", ipv6: true, detachNetns: false, ...QUIET });
    const { state, inspected } = await convergesWithOneRestart(forky, spec);
    assert.doesNotMatch(state.rootlesskit, /--detach-netns/);
    assert.match(state.rootlesskit, / --ipv6 /);
    assert.equal(inspected.running.detachNetns, false);
    const read = observedInputs(spec, inspected.facts);
    assert.deepEqual([read.detachNetns, read.extraFlags], [false, []]);

    // Unset, the script's default (true) decides: the plan expects the --detach-netns it would add to FLAGS itself.
    const unset = labSpec(forky, { networkDriver: "pasta", ipv6: true, ...QUIET });
    const { plan } = await engine.inspectHost(unset);
    const detach = plan.changes.find((change) => change.level === "running" && change.property === "DOCKERD_ROOTLESS_ROOTLESSKIT_DETACH_NETNS");
    assert.ok(detach, JSON.stringify(plan.changes));
    assert.deepEqual([detach.desired, detach.actual], ["true", "false"]);
    assert.match(detach.cause ?? "", /the script's default DOCKERD_ROOTLESS_ROOTLESSKIT_DETACH_NETNS=true/);
    assert.equal(plan.changes.some((change) => change.property === "DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS"), false, "no extra flag: --detach-netns is the script's own");
  });

  it(`forky as Docker 29.5+ (moby's ${MOBY} script and its own dockerd, RootlessKit ${ROOTLESSKIT_3_0}): the script's --detach-netns runs, the apply converges and verifies, a second apply does not restart, read has no extraFlags`, async () => {
    await installRootlessScriptOn(forky.name, MOBY);
    await installMobyDockerdOn(forky.name, MOBY);
    await startFrom(forky, START);
    // Unset: the script's default (true) turns --detach-netns on, and rewrites FLAGS to `--detach-netns $FLAGS`.
    const spec = labSpec(forky, { networkDriver: "pasta", ipv6: true, verify: { targets: [{ address: forky.target.ipv6, tcpPort: forky.target.ipv6TcpPort, icmp: false }], required: true } });
    const { first, state, inspected } = await convergesWithOneRestart(forky, spec);
    assert.equal(first.verification?.reachable, true, JSON.stringify(first.verification));
    assert.match(state.rootlesskit, / --propagation=rslave --detach-netns --ipv6 /);
    assert.match(await userCommand(forky, "tr '\\0' '\\n' < /proc/$(systemctl --user show -p MainPID --value docker)/environ"), /^DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS=--detach-netns --ipv6$/m, "the script rewrote FLAGS");
    assert.deepEqual([inspected.running.detachNetns, inspected.running.extraFlags], [true, []]);
    const read = observedInputs(spec, inspected.facts);
    assert.deepEqual([read.extraFlags, read.detachNetns, read.ipv6], [[], undefined, true]);

    // slirp4netns with IPv6 cannot work under this script: it turns on IPv6 forwarding in the namespace (tap0 got no
    // address from router advertisements on this host), so the plan refuses it before writing.
    const slirp = await engine.inspectHost(labSpec(forky, { networkDriver: "slirp4netns", ipv6: true, ...QUIET }));
    assert.ok(slirp.plan.problems.some((problem) => problem.severity === "error" && /turns on IPv6 forwarding in the RootlessKit namespace itself/.test(problem.message)), JSON.stringify(slirp.plan.problems));
  });
});

describe("the manager's environment cannot keep a flag declared off (issue 9 item 6)", () => {
  it("systemctl --user set-environment FLAGS=--ipv6 with ipv6 unset: the apply writes an empty FLAGS that beats it, and RootlessKit runs without --ipv6", async () => {
    await userCommand(trixie, "systemctl --user set-environment DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS=--ipv6");
    try {
      const started = await startFrom(trixie, START);
      assert.match(started.rootlesskit, / --ipv6 /, "the manager's environment is in force before the apply");
      const spec = labSpec(trixie, { networkDriver: "slirp4netns", ...QUIET });
      const result = await engine.applyHost(spec);
      const state = await hostState(trixie);
      assert.doesNotMatch(state.rootlesskit, /--ipv6/);
      assert.match(state.dropIn ?? "", /DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS="?$/m, "an empty FLAGS in our drop-in");
      assert.match(await userCommand(trixie, "systemctl --user show-environment"), /^DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS=--ipv6$/m, "the manager still has it: ours beats it");
      await assertInSync(spec, result);
    } finally {
      await userCommand(trixie, "systemctl --user unset-environment DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS");
    }
  });

  it("an environment.d file not loaded yet (the apply's own daemon-reload loads it) with ipv6 false: still no --ipv6 after the apply", async () => {
    await startFrom(trixie, START);
    await userCommand(trixie, "mkdir -p ~/.config/environment.d && printf 'DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS=--ipv6\\n' > ~/.config/environment.d/50-rdn.conf");
    try {
      assert.doesNotMatch(await userCommand(trixie, "systemctl --user show-environment"), /DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS/);
      const spec = labSpec(trixie, { networkDriver: "slirp4netns", ipv6: false, ...QUIET });
      const result = await engine.applyHost(spec);
      const state = await hostState(trixie);
      assert.doesNotMatch(state.rootlesskit, /--ipv6/);
      assert.match(await userCommand(trixie, "systemctl --user show-environment"), /^DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS=--ipv6$/m, "the apply's daemon-reload ran the environment generator");
      await assertInSync(spec, result);
    } finally {
      await userCommand(trixie, "rm -f ~/.config/environment.d/50-rdn.conf && systemctl --user daemon-reload && systemctl --user unset-environment DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS");
    }
  });
});

