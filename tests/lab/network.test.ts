/**
 * The engine against real lab hosts: every assertion reads the host itself (file contents, the running
 * RootlessKit command line, the unit's InvocationID) or what got through the network.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

process.env.RDL_LAB = "nettest";
import { labDown, labUp, setPingGroupRange, userExec, type LabHost } from "../../lab/api";
import { applyHost, inspectHost, removeHost, verifyHost } from "../../provider/engine";
import { isCapabilityError } from "../../provider/errors";
import { TRACE_ENV } from "../../provider/transport";
import { assertInSync, assertRemoved } from "../helpers/in-sync";
import { labSpec } from "../helpers/lab-spec";

const DROP_IN = "/home/dev/.config/systemd/user/docker.service.d/override.conf";
const COMPAT_HELPER = "/home/dev/.local/lib/pulumi-rootless-docker/pasta-ipv6-compat.sh";
/** What an admin had before we came: none of it is ours, so delete must give it back byte for byte. */
const ORIGINAL = '# local tweaks, keep\r\n[Unit]\r\nDescription=kept by the admin\r\n\r\n[Service]\r\nEnvironment="FOO=bar baz" LANG=C.UTF-8\r\n';

async function onHost(host: LabHost, command: string): Promise<string> {
  const result = await userExec(host.name, command);
  assert.equal(result.exitCode, 0, `${host.name}: ${command}: ${result.stderr}`);
  return result.stdout;
}
const fileOnHost = (host: LabHost, path: string) => onHost(host, `cat ${path}`);
const fileExists = async (host: LabHost, path: string) => (await userExec(host.name, `test -e ${path}`)).exitCode === 0;
const invocationId = async (host: LabHost) => (await onHost(host, "systemctl --user show docker -p InvocationID --value")).trim();
const rootlesskitCommandLine = (host: LabHost) =>
  onHost(host, "tr '\\0' ' ' < /proc/$(systemctl --user show docker -p ExecMainPID --value)/cmdline");

function countTraceEvents<T>(work: () => Promise<T>): Promise<{ result: T; connects: number; execs: number }> {
  const dir = mkdtempSync(join(tmpdir(), "rdn-trace-"));
  const file = join(dir, "trace.jsonl");
  process.env[TRACE_ENV] = file;
  return work()
    .then((result) => {
      const events = readFileSync(file, "utf8").trim().split("\n").map((line) => JSON.parse(line) as { event: string });
      return { result, connects: events.filter((e) => e.event === "connect").length, execs: events.filter((e) => e.event === "exec").length };
    })
    .finally(() => {
      delete process.env[TRACE_ENV];
      rmSync(dir, { recursive: true, force: true });
    });
}

describe("RootlessDockerNetwork engine on real hosts", { timeout: 900_000 }, () => {
  let trixie: LabHost;
  let bookworm: LabHost;
  const slirpIpv6 = () => labSpec(trixie, { networkDriver: "slirp4netns", ipv6: true, verify: { targets: [{ address: trixie.target.ipv6, tcpPort: trixie.target.ipv6TcpPort }], required: true, timeoutSeconds: 45 } });
  const pastaIpv6 = (overrides: Record<string, unknown> = {}) =>
    labSpec(trixie, { networkDriver: "pasta", ipv6: true, verify: { targets: [{ address: trixie.target.ipv6, tcpPort: trixie.target.ipv6TcpPort }], timeoutSeconds: 45 }, ...overrides });

  before(async () => {
    await labDown();
    [trixie] = await labUp({ hosts: 1, profile: "trixie" });
    [bookworm] = await labUp({ hosts: 1, profile: "bookworm", docker: false });
    await onHost(trixie, `mkdir -p $(dirname ${DROP_IN}) && printf '%s' '${ORIGINAL}' > ${DROP_IN} && systemctl --user daemon-reload`);
  });
  after(() => labDown());

  it("plans a fresh host: the file lacks our settings and the running daemon has slirp4netns without IPv6", async () => {
    const { plan, running } = await inspectHost(slirpIpv6());
    assert.equal(plan.differs, true);
    assert.ok(plan.changes.some((change) => change.level === "file"), JSON.stringify(plan.changes));
    assert.ok(plan.changes.some((change) => change.level === "running"), JSON.stringify(plan.changes));
    assert.equal(running.ipv6, false);
    assert.equal(plan.restart, true);
    assert.equal(await fileOnHost(trixie, DROP_IN), ORIGINAL, "inspect must not write");
  });

  it("applies slirp4netns + IPv6, keeps the admin's lines, restarts once and verifies TCP and ICMP to the target", async () => {
    const result = await applyHost(slirpIpv6());
    await assertInSync(slirpIpv6(), result);
    assert.equal(result.restarted, true);
    const content = await fileOnHost(trixie, DROP_IN);
    assert.ok(content.startsWith(ORIGINAL.slice(0, ORIGINAL.indexOf('Environment="FOO'))), content);
    assert.match(content, /Environment="FOO=bar baz" LANG=C\.UTF-8\r\n/);
    assert.match(content, /DOCKERD_ROOTLESS_ROOTLESSKIT_NET=slirp4netns/);
    assert.match(content, /DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS=--ipv6/);
    const commandLine = await rootlesskitCommandLine(trixie);
    assert.match(commandLine, /--net=slirp4netns/);
    assert.match(commandLine, / --ipv6\b/);
    assert.match(commandLine, /--mtu=65520/);
    assert.ok(result.verification, "verification ran");
    assert.equal(result.verification.reachable, true, JSON.stringify(result.verification));
    assert.equal(result.verification.tcp, true);
    assert.equal(result.verification.icmp, true);
    // Without containerIpv6 no bridge container is probed, and the output says reachable covers the namespace only.
    assert.equal(result.verification.covers, "namespace");
    assert.equal(result.verification.container, null);
  });

  it("a second apply changes nothing: one connection, no write, no restart (InvocationID unchanged)", async () => {
    const before = { id: await invocationId(trixie), content: await fileOnHost(trixie, DROP_IN) };
    const { result, connects } = await countTraceEvents(() => applyHost(slirpIpv6()));
    await assertInSync(slirpIpv6(), result);
    assert.equal(connects, 1);
    assert.equal(result.wrote, false);
    assert.equal(result.restarted, false);
    assert.equal(result.plan.differs, false, JSON.stringify(result.plan.changes));
    assert.equal(await invocationId(trixie), before.id);
    assert.equal(await fileOnHost(trixie, DROP_IN), before.content);
  });

  it("inspect (diff and read) uses one connection and one remote exec", async () => {
    const { result, connects, execs } = await countTraceEvents(() => inspectHost(slirpIpv6()));
    assert.equal(result.plan.differs, false);
    assert.equal(connects, 1);
    assert.equal(execs, 1);
  });

  it("with ping_group_range closed, TCP still gets through and ICMP is diagnosed as blocked by it", async () => {
    await setPingGroupRange(trixie.name, "closed");
    try {
      const verification = await verifyHost(labSpec(trixie, { networkDriver: "slirp4netns", ipv6: true, verify: { targets: [{ address: trixie.target.ipv6, tcpPort: trixie.target.ipv6TcpPort }], timeoutSeconds: 8 } }));
      assert.equal(verification.tcp, true, JSON.stringify(verification));
      assert.equal(verification.icmp, false);
      assert.equal(verification.diagnosis, "icmp-blocked-by-ping-group-range");
    } finally {
      await setPingGroupRange(trixie.name, "open");
    }
  });

  it("pasta + IPv6 on Debian 13's rootlesskit 2.0.2 is refused before anything is written, naming pastaIpv6Compat", async () => {
    const before = await fileOnHost(trixie, DROP_IN);
    await assert.rejects(applyHost(pastaIpv6()), (error: unknown) => {
      assert.ok(isCapabilityError(error), String(error));
      assert.match(error.message, /2\.0\.2/);
      assert.match(error.message, /pastaIpv6Compat/);
      assert.match(error.message, new RegExp(trixie.address.replace(/\./g, "\\.")));
      return true;
    });
    assert.equal(await fileOnHost(trixie, DROP_IN), before);
  });

  it("pasta + IPv6 with pastaIpv6Compat installs the helper and is verified reachable", async () => {
    const spec = pastaIpv6({ pastaIpv6Compat: true, verify: { targets: [{ address: trixie.target.ipv6, tcpPort: trixie.target.ipv6TcpPort }], required: true, timeoutSeconds: 45 } });
    const result = await applyHost(spec);
    await assertInSync(spec, result);
    assert.equal(result.compatInUse, true);
    assert.equal(result.restarted, true);
    const commandLine = await rootlesskitCommandLine(trixie);
    assert.match(commandLine, /--net=pasta/);
    assert.match(commandLine, /--port-driver=implicit/);
    assert.match(commandLine, / --ipv6\b/);
    assert.equal(await fileExists(trixie, COMPAT_HELPER), true);
    assert.match(await fileOnHost(trixie, DROP_IN), /ExecStartPost=/);
    assert.equal(result.verification?.reachable, true, JSON.stringify(result.verification));
    assert.equal(result.verification?.tcp, true);
  });

  it("going back to slirp4netns removes the compat helper and its ExecStartPost line", async () => {
    const result = await applyHost(slirpIpv6());
    await assertInSync(slirpIpv6(), result);
    assert.equal(result.compatInUse, false);
    assert.equal(await fileExists(trixie, COMPAT_HELPER), false);
    const content = await fileOnHost(trixie, DROP_IN);
    assert.doesNotMatch(content, /ExecStartPost=/);
    assert.match(await rootlesskitCommandLine(trixie), /--net=slirp4netns/);
  });

  it("a hand edit of our drop-in shows up as drift in the file", async () => {
    await onHost(trixie, `sed -i 's/ROOTLESSKIT_NET=slirp4netns/ROOTLESSKIT_NET=vpnkit/' ${DROP_IN}`);
    const { plan } = await inspectHost(slirpIpv6());
    const fileChange = plan.changes.find((change) => change.level === "file");
    assert.ok(fileChange, JSON.stringify(plan.changes));
    assert.match(`${fileChange.property} ${fileChange.actual}`, /vpnkit/);
    await assertInSync(slirpIpv6(), await applyHost(slirpIpv6()));
    assert.match(await fileOnHost(trixie, DROP_IN), /ROOTLESSKIT_NET=slirp4netns/);
  });

  it("another drop-in that sorts later and overrides us is named as the cause", async () => {
    const overriding = "/home/dev/.config/systemd/user/docker.service.d/zz-local.conf";
    await onHost(trixie, `printf '[Service]\\nEnvironment=DOCKERD_ROOTLESS_ROOTLESSKIT_NET=vpnkit\\n' > ${overriding} && systemctl --user daemon-reload`);
    try {
      const { plan } = await inspectHost(slirpIpv6());
      const effective = plan.changes.find((change) => change.level === "effective");
      assert.ok(effective, JSON.stringify(plan.changes));
      assert.match(effective.cause ?? "", /zz-local\.conf/);
    } finally {
      await onHost(trixie, `rm -f ${overriding} && systemctl --user daemon-reload`);
    }
  });

  it("with containerIpv6, daemon.json gets a ULA prefix and a bridge container reaches the target too", async () => {
    const spec = pastaIpv6({ pastaIpv6Compat: true, containerIpv6: true, verify: { targets: [{ address: trixie.target.ipv6, tcpPort: trixie.target.ipv6TcpPort }], timeoutSeconds: 45 } });
    const result = await applyHost(spec);
    await assertInSync(spec, result);
    const daemonJson = JSON.parse(await fileOnHost(trixie, "/home/dev/.config/docker/daemon.json")) as Record<string, unknown>;
    assert.equal(daemonJson.ipv6, true);
    assert.match(String(daemonJson["fixed-cidr-v6"]), /^f[cd][0-9a-f]{2}:/);
    assert.doesNotMatch(String(daemonJson["fixed-cidr-v6"]), /^fd00::\//);
    // The namespace and the bridge container reported apart, and reachable speaks for both.
    assert.equal(result.verification?.covers, "namespace+container", JSON.stringify(result.verification));
    assert.equal(result.verification?.namespace.reachable, true, JSON.stringify(result.verification?.namespace));
    const container = result.verification?.container;
    assert.ok(container, JSON.stringify(result.verification));
    assert.equal(container.path, "container");
    assert.equal(container.reachable, true, JSON.stringify(container));
    assert.ok(container.targets.every((target) => target.tcp === true), JSON.stringify(container.targets));
    assert.equal(result.verification?.reachable, true);
  });

  it("slirp4netns + IPv6 beside daemon IPv6 is warned about: dockerd's forwarding costs the namespace its default route", async () => {
    const { plan } = await inspectHost(slirpIpv6());
    assert.ok(plan.problems.some((problem) => problem.severity === "warning" && /router advertisements/.test(problem.message)), JSON.stringify(plan.problems));
  });

  it("delete gives back the admin's original file byte for byte and restarts without our settings", async () => {
    const result = await removeHost(slirpIpv6());
    await assertRemoved(slirpIpv6(), result);
    assert.equal(result.restarted, true);
    assert.equal(await fileOnHost(trixie, DROP_IN), ORIGINAL);
    assert.doesNotMatch(await rootlesskitCommandLine(trixie), / --ipv6\b/);
  });

  it("a bookworm host (rootlesskit 1.1.0) rejects pasta with nothing written", async () => {
    const spec = labSpec(bookworm, { networkDriver: "pasta", ipv6: true });
    const { plan, facts } = await inspectHost(spec);
    assert.equal(facts.versions.rootlesskit, "1.1.0");
    assert.ok(plan.problems.some((problem) => problem.severity === "error" && /1\.1\.0/.test(problem.message)), JSON.stringify(plan.problems));
    await assert.rejects(applyHost(spec), (error: unknown) => isCapabilityError(error));
    assert.equal(await fileExists(bookworm, DROP_IN), false);
  });
});
