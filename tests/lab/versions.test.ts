/**
 * What users run (issue 11): RootlessKit 2.3.x and 3.x (built from the Go module proxy), Docker 28.5.2 and systemd 262
 * (Debian forky), Docker 20.10 with RootlessKit 1.1.0 (bookworm). Every assertion reads the host: the running
 * RootlessKit and pasta command lines, files, InvocationID, what got through the network.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

process.env.RDL_LAB = "versiontest";
import { hostExec, labDown, labUp, upgradeRootlessKit, type LabHost } from "../../lab/api";
import { applyHost, inspectHost } from "../../provider/engine";
import { hostState, userCommand } from "../helpers/host-state";
import { labSpec } from "../helpers/lab-spec";
import { ROOTLESSKIT_2, ROOTLESSKIT_3 } from "../helpers/lab-versions";

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
/** The user journal's "Started" lines of docker.service since `since` (epoch seconds): one per (re)start. */
const startsSince = async (host: LabHost, since: number) =>
  Number((await hostExec(host.name, `journalctl --since @${since} USER_UNIT=docker.service -o cat | grep -c '^Started ' || true`)).stdout.trim());

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
      const since = Math.floor(Date.now() / 1000) - 1;
      const result = await applyHost(pastaIpv6());
      assert.equal(result.restarted, true);
      assert.equal(result.compatInUse, false);
      assert.equal(await fileExists(trixie, COMPAT_HELPER), false);
      const state = await hostState(trixie);
      assert.doesNotMatch(state.dropIn ?? "", /^ExecStartPost=/m);
      assert.notEqual(await invocationId(trixie), before);
      assert.equal(await startsSince(trixie, since), 1, "one restart");
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
      assert.equal(result.restarted, false);
      assert.equal(result.compatInUse, false);
      assert.equal(await fileExists(trixie, COMPAT_HELPER), false);
      assert.equal(await invocationId(trixie), before);
      assert.ok(result.warnings.some((warning) => /pastaIpv6Compat/.test(warning) && new RegExp(ROOTLESSKIT_2.replace(/\./g, "\\.")).test(warning)), JSON.stringify(result.warnings));
    });
  });
});
