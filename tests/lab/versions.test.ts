/**
 * What users run (issue 11): RootlessKit 2.3.x and 3.x (built from the Go module proxy), Docker 28.5.2 and systemd 262
 * (Debian forky), Docker 20.10 with RootlessKit 1.1.0 (bookworm). Every assertion reads the host: the running
 * RootlessKit and pasta command lines, files, InvocationID, what got through the network.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

process.env.RDL_LAB = "versiontest";
import { hostExec, labDown, labUp, upgradeRootlessKit, type LabHost } from "../../lab/api";
import { runCli } from "../../provider/cli/main";
import * as engine from "../../provider/engine";
import { applyHost, inspectHost } from "../../provider/engine";
import { hostState, startFrom, userCommand } from "../helpers/host-state";
import { assertInSync } from "../helpers/in-sync";
import { labSpec } from "../helpers/lab-spec";
import { ROOTLESSKIT_2, ROOTLESSKIT_3 } from "../helpers/lab-versions";
import { NO_DAEMON } from "../../provider/core/running";

const COMPAT_HELPER = "/home/dev/.local/lib/pulumi-rootless-docker/pasta-ipv6-compat.sh";
const STATE_DIR = "$XDG_RUNTIME_DIR/dockerd-rootless";

const invocationId = async (host: LabHost) => (await userCommand(host, "systemctl --user show docker -p InvocationID --value")).trim();
const fileExists = async (host: LabHost, path: string) => (await hostExec(host.name, `test -e ${path}`)).exitCode === 0;
/** argv of the running pasta (space-joined), or "" when none runs. */
const pastaCommandLine = async (host: LabHost) => (await userCommand(host, "for p in $(pgrep -u dev -x pasta) $(pgrep -u dev -x pasta.avx2); do tr '\\0' ' ' < /proc/$p/cmdline; echo; done")).trim();
/** Runs a command in the RootlessKit namespace: `$STATE_DIR/netns` when RootlessKit detached it, else the child's. */
const inNamespace = (command: string) =>
  `child=$(cat ${STATE_DIR}/child_pid) && if [ -e ${STATE_DIR}/netns ] && nsenter -U --preserve-credentials -t $child --net=/proc/$child/root${STATE_DIR}/netns true 2>/dev/null; ` +
  `then nsenter -U --preserve-credentials -t $child --net=/proc/$child/root${STATE_DIR}/netns ${command}; else nsenter -U --preserve-credentials -n -t $child ${command}; fi`;
/** Fetches the lab target over IPv4 from inside the RootlessKit namespace; the target answers with the source it saw. */
const ipv4FromNamespace = (host: LabHost) => userCommand(host, inNamespace(`curl -sS -m 10 http://${host.target.ipv4}:${host.target.ipv6TcpPort}/`));
/** Where the host's journal ends now: a whole second back could still hold the previous test's restart. */
const journalCursor = async (host: LabHost) =>
  (await hostExec(host.name, "journalctl -n 0 --show-cursor -q | sed -n 's/^-- cursor: //p'")).stdout.trim();
const startsAfter = async (host: LabHost, cursor: string) =>
  (await hostExec(host.name, `journalctl --after-cursor='${cursor}' USER_UNIT=docker.service -o short-precise | grep 'Started ' || true`)).stdout;

describe("versions users run, on real hosts", { timeout: 1_800_000 }, () => {
  let trixie: LabHost;
  let forky: LabHost;
  let bookworm: LabHost;
  let forky3: LabHost;
  const target = (host: LabHost) => ({ targets: [{ address: host.target.ipv6, tcpPort: host.target.ipv6TcpPort }], required: true, timeoutSeconds: 60 });

  before(async () => {
    await labDown();
    [trixie, forky, bookworm] = await labUp({ profile: ["trixie", "forky", "bookworm"] });
    [forky3] = await labUp({ profile: "forky", rootlesskit: ROOTLESSKIT_3 });
  });
  after(() => labDown());

  it("`status --json` reports the versions each host runs, read from the host", () => {
    const status = JSON.parse(
      execFileSync(process.execPath, [join(__dirname, "../../lab/main.js"), "status", "--json"], { env: process.env, encoding: "utf8" }),
    ) as (LabHost & { versions: Record<string, string | null> })[];
    const versions = Object.fromEntries(status.map((host) => [host.name, host.versions]));
    assert.equal(versions[trixie.name].rootlesskit, "2.0.2");
    assert.match(String(versions[trixie.name].docker), /^26\.1\./);
    assert.equal(versions[forky.name].rootlesskit, "2.0.2");
    assert.match(String(versions[forky.name].docker), /^28\.5\.2/);
    assert.match(String(versions[forky.name].systemd), /^262\b/);
    assert.match(String(versions[forky.name].passt), /2026/);
    assert.equal(versions[forky3.name].rootlesskit, ROOTLESSKIT_3);
    assert.equal(status.find((host) => host.name === forky3.name)?.rootlesskitBuild, ROOTLESSKIT_3);
    assert.equal(versions[bookworm.name].rootlesskit, "1.1.0");
    assert.match(String(versions[bookworm.name].docker), /^20\.10\./);
  });

  describe(`upgrade in place: RootlessKit 2.0.2 with the compat helper → ${ROOTLESSKIT_2}`, () => {
    const pastaIpv6 = () => labSpec(trixie, { networkDriver: "pasta", ipv6: true, pastaIpv6Compat: true, verify: target(trixie) });

    it("on 2.0.2, pasta + IPv6 converges with the compat helper and its ExecStartPost=", async () => {
      const result = await applyHost(pastaIpv6());
      await assertInSync(pastaIpv6(), result);
      assert.equal(result.compatInUse, true);
      assert.equal(await fileExists(trixie, COMPAT_HELPER), true);
      assert.match((await hostState(trixie)).dropIn ?? "", /^ExecStartPost=/m);
      assert.equal(result.verification?.reachable, true, JSON.stringify(result.verification));
    });

    it(`after the binary is swapped for ${ROOTLESSKIT_2}, the plan shows the helper and ExecStartPost= going`, async () => {
      assert.equal(await upgradeRootlessKit(trixie.name, ROOTLESSKIT_2), ROOTLESSKIT_2);
      const { plan, facts } = await inspectHost(pastaIpv6());
      assert.equal(facts.versions.rootlesskit, ROOTLESSKIT_2);
      const exec = plan.changes.find((change) => change.property === "ExecStartPost");
      assert.ok(exec && exec.actual !== undefined && exec.desired === undefined, JSON.stringify(plan.changes));
      const helper = plan.changes.find((change) => change.property === "pastaIpv6Compat helper");
      assert.ok(helper && helper.actual === COMPAT_HELPER && helper.desired === undefined, JSON.stringify(plan.changes));
      assert.equal(plan.compatInUse, false);
      assert.equal(plan.restart, true);
      assert.ok(plan.writes.some((write) => write.path === COMPAT_HELPER && write.content === null), JSON.stringify(plan.writes));
    });

    it(`apply removes them, restarts once on ${ROOTLESSKIT_2}, and pasta gives the namespace IPv6 by itself`, async () => {
      const before = await invocationId(trixie);
      const cursor = await journalCursor(trixie);
      const result = await applyHost(pastaIpv6());
      await assertInSync(pastaIpv6(), result);
      assert.equal(result.restarted, true);
      assert.equal(result.compatInUse, false);
      assert.equal(await fileExists(trixie, COMPAT_HELPER), false);
      const state = await hostState(trixie);
      assert.doesNotMatch(state.dropIn ?? "", /^ExecStartPost=/m);
      assert.notEqual(await invocationId(trixie), before);
      const starts = await startsAfter(trixie, cursor);
      assert.equal(starts.split("\n").filter(Boolean).length, 1, `one restart:\n${starts}`);
      assert.match(state.rootlesskit, /--net=pasta/);
      assert.match(state.rootlesskit, / --ipv6\b/);
      assert.match(await userCommand(trixie, "rootlesskit --version"), new RegExp(ROOTLESSKIT_2.replace(/\./g, "\\.")));
      // 2.3.0 lets pasta configure the interface (--config-net) instead of IPv4 only with --no-ra.
      const pasta = await pastaCommandLine(trixie);
      assert.match(pasta, /--config-net/);
      assert.doesNotMatch(pasta, /--no-ra|--ipv4-only/);
      assert.match(await userCommand(trixie, inNamespace("ip -6 addr show dev tap0 scope global")), /inet6 /);
      assert.equal(result.verification?.reachable, true, JSON.stringify(result.verification));
      assert.equal(result.verification?.tcp, true);
    });

    it("pastaIpv6Compat: true then installs nothing, and the outputs say why", async () => {
      const before = await invocationId(trixie);
      const result = await applyHost(pastaIpv6());
      await assertInSync(pastaIpv6(), result);
      assert.equal(result.restarted, false);
      assert.equal(result.compatInUse, false);
      assert.equal(await fileExists(trixie, COMPAT_HELPER), false);
      assert.equal(await invocationId(trixie), before);
      assert.ok(result.warnings.some((warning) => /pastaIpv6Compat/.test(warning) && new RegExp(ROOTLESSKIT_2.replace(/\./g, "\\.")).test(warning)), JSON.stringify(result.warnings));
    });
  });
  describe(`RootlessKit ${ROOTLESSKIT_3} (forky's passt)`, () => {
    const noVerify = { enabled: false };

    it("pasta without ipv6: pasta gets --ipv4-only, the daemon runs, and IPv4 goes through pasta", async () => {
      const result = await applyHost(labSpec(forky3, { networkDriver: "pasta", verify: noVerify }));
      assert.equal(result.restarted, true);
      const state = await hostState(forky3);
      assert.equal(state.active, "active");
      assert.match(state.rootlesskit, /--net=pasta/);
      assert.doesNotMatch(state.rootlesskit, / --ipv6\b/);
      assert.match(await pastaCommandLine(forky3), /--ipv4-only/);
      // rootlesskit#591 saw pasta refuse this ("Dual stack forward, but IPv6 not enabled") with passt 2026_05.
      assert.doesNotMatch((await hostExec(forky3.name, "journalctl USER_UNIT=docker.service -o cat")).stdout, /Dual stack forward/);
      assert.match(await ipv4FromNamespace(forky3), new RegExp(`^rdl-target ${forky3.target.ipv4.replace(/\./g, "\\.")} from `));
      assert.doesNotMatch(await userCommand(forky3, inNamespace("ip -6 addr show dev tap0 scope global")), /inet6 /);
    });

    it("pasta + ipv6: the namespace gets RootlessKit's fixed fd00::100 via fd00::2 and the target answers", async () => {
      const result = await applyHost(labSpec(forky3, { networkDriver: "pasta", ipv6: true, verify: target(forky3) }));
      const pasta = await pastaCommandLine(forky3);
      assert.match(pasta, /--address=fd00::100/);
      assert.match(pasta, /--gateway=fd00::2/);
      assert.doesNotMatch(pasta, /--ipv4-only/);
      assert.match(await userCommand(forky3, inNamespace("ip -6 addr show dev tap0 scope global")), /inet6 fd00::100\//);
      assert.equal(result.verification?.reachable, true, JSON.stringify(result.verification));
      assert.equal(result.verification?.tcp, true);
    });

    it("builtin port driver: the --source-ip-transparent default (not on the command line) is not drift", async () => {
      const spec = labSpec(forky3, { networkDriver: "slirp4netns", portDriver: "builtin", ipv6: true, verify: target(forky3) });
      const applied = await applyHost(spec);
      assert.equal(applied.verification?.reachable, true, JSON.stringify(applied.verification));
      assert.doesNotMatch((await hostState(forky3)).rootlesskit, /source-ip-transparent/);
      const before = await invocationId(forky3);
      const { plan } = await inspectHost(spec);
      assert.equal(plan.differs, false, JSON.stringify(plan.changes));
      const again = await applyHost(spec);
      assert.equal(again.restarted, false);
      assert.equal(await invocationId(forky3), before);
    });

    it("gvisor-tap-vsock with ipv6 is refused before anything is written; without ipv6 it runs", async () => {
      const before = { state: await hostState(forky3), id: await invocationId(forky3) };
      const hostsFile = join(mkdtempSync(join(tmpdir(), "versiontest-")), "hosts.yaml");
      writeFileSync(hostsFile, JSON.stringify({ hosts: [{ name: forky3.name, networkDriver: "gvisor-tap-vsock", ipv6: true }] }));
      let output = "";
      const code = await runCli(["apply", "--lab", "--hosts", hostsFile], { stdout: (text) => (output += text), stderr: (text) => (output += text), interactive: false, engine });
      assert.equal(code, 1, output);
      assert.match(output, /gvisor-tap-vsock/);
      assert.deepEqual(await hostState(forky3), before.state);
      assert.equal(await invocationId(forky3), before.id);

      await applyHost(labSpec(forky3, { networkDriver: "gvisor-tap-vsock", verify: noVerify }));
      const state = await hostState(forky3);
      assert.equal(state.active, "active");
      assert.match(state.rootlesskit, /--net=gvisor-tap-vsock/);
      assert.match(await ipv4FromNamespace(forky3), /^rdl-target /);
    });
  });

  describe("forky: Docker 28.5.2 with Debian's RootlessKit 2.0.2", () => {
    it("NET=pasta alone runs with MTU 65520 and the implicit port driver; the plan reports that and needs no restart", async () => {
      const state = await startFrom(forky, "[Service]\nEnvironment=DOCKERD_ROOTLESS_ROOTLESSKIT_NET=pasta\n");
      // moby#47765 (fixed in 28.5.2): an explicit NET no longer falls back to MTU 1500; pasta defaults to implicit.
      assert.match(state.rootlesskit, /--mtu=65520/);
      assert.match(state.rootlesskit, /--port-driver=implicit/);
      const spec = labSpec(forky, { networkDriver: "pasta", verify: { enabled: false } });
      const { plan, running } = await inspectHost(spec);
      assert.deepEqual(running, { ...NO_DAEMON, networkDriver: "pasta", portDriver: "implicit", ipv6: false, mtu: 65520, disableHostLoopback: true, slirp4netnsSandbox: "auto", slirp4netnsSeccomp: "auto" });
      assert.deepEqual(plan.changes.filter((change) => change.level === "running"), []);
      assert.equal(plan.restart, false);
      const before = await invocationId(forky);
      const result = await applyHost(spec);
      assert.equal(result.restarted, false);
      assert.equal(await invocationId(forky), before);
      assert.match((await hostState(forky)).dropIn ?? "", /DOCKERD_ROOTLESS_ROOTLESSKIT_MTU=65520/);
    });

    it("--detach-netns through FLAGS (the script reads no DETACH_NETNS before 29.5): Docker 28.5.2 cannot run with it, and the apply rolls back", async () => {
      const spec = labSpec(forky, { networkDriver: "slirp4netns", ipv6: true, verify: target(forky) });
      await applyHost(spec);
      const before = await hostState(forky);
      await assert.rejects(applyHost(labSpec(forky, { networkDriver: "slirp4netns", ipv6: true, extraFlags: ["--detach-netns"], verify: target(forky) })), (error: unknown) => {
        // dockerd stays in the host's network namespace, where the user may not create iptables chains.
        assert.match(String(error), /iptables/);
        assert.match(String(error), /restored/);
        return true;
      });
      const after = await hostState(forky);
      assert.equal(after.dropIn, before.dropIn);
      assert.equal(after.active, "active");
      assert.doesNotMatch(after.rootlesskit, /--detach-netns/);
    });
  });

  it("bookworm with Docker running: the facts of a running RootlessKit 1.1.0 daemon, read from the host", async () => {
    const { facts, plan } = await inspectHost(labSpec(bookworm, { networkDriver: "slirp4netns", ipv6: true }));
    assert.equal(facts.versions.rootlesskit, "1.1.0");
    assert.match(String(facts.versions.dockerd), /^20\.10\./);
    assert.equal(facts.unit.activeState, "active");
    assert.ok(facts.running.childPid !== null && facts.running.childPid > 0);
    const argv = (facts.running.rootlesskitArgv ?? []).join(" ");
    assert.equal(argv, (await hostState(bookworm)).rootlesskit, "the facts hold the command line that runs");
    assert.match(argv, /--net=slirp4netns/);
    assert.match(argv, /--port-driver=builtin/);
    assert.ok(facts.running.slirp4netnsArgv !== null, "slirp4netns runs");
    assert.equal(facts.binaries.pasta, null, "bookworm has no passt");
    assert.equal(plan.problems.filter((problem) => problem.severity === "error").length, 0, JSON.stringify(plan.problems));
    // Docker 20.10 passes no --state-dir: RootlessKit 1.1.0 made its own under /tmp, found through the lock it holds.
    assert.doesNotMatch(argv, /--state-dir/);
    // TCP only: bookworm's slirp4netns 1.2.0 (libslirp 4.7) answers no ICMPv6 echo to the target (seen in the lab).
    const tcpOnly = { ...target(bookworm), targets: [{ address: bookworm.target.ipv6, tcpPort: bookworm.target.ipv6TcpPort, icmp: false }] };
    const applied = await applyHost(labSpec(bookworm, { networkDriver: "slirp4netns", ipv6: true, verify: tcpOnly }));
    assert.match((await hostState(bookworm)).rootlesskit, / --ipv6\b/);
    assert.equal(applied.verification?.reachable, true, JSON.stringify(applied.verification));
    const pasta = await inspectHost(labSpec(bookworm, { networkDriver: "pasta" }));
    assert.ok(pasta.plan.problems.some((problem) => problem.severity === "error" && /1\.1\.0 has no pasta/.test(problem.message)), JSON.stringify(pasta.plan.problems));
  });
});
