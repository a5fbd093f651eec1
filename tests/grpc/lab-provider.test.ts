/**
 * The whole resource lifecycle as the Pulumi engine drives it — Check, Diff, Create, Read, Update, Delete over gRPC
 * through Pulumi's own dynamic-provider host, with the provider serialized as `dynamic.Resource` does — against a
 * real lab host. Assertions read the host (file, running RootlessKit command line, InvocationID) and count SSH use.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

process.env.RDL_LAB = "grpclab";
import { labDown, labUp, userExec, type LabHost } from "../../lab/api";
import { TRACE_ENV } from "../../provider/transport";
import { assertInputsInSync, assertInputsRemoved } from "../helpers/in-sync";
import { labInputs } from "../helpers/lab-spec";
import { ProviderHostCallError, startProviderHost, type ProviderHost } from "../helpers/provider-host";

const DROP_IN = "/home/dev/.config/systemd/user/docker.service.d/override.conf";

async function onHost(host: LabHost, command: string): Promise<string> {
  const result = await userExec(host.name, command);
  assert.equal(result.exitCode, 0, `${host.name}: ${command}: ${result.stderr}`);
  return result.stdout;
}
const invocationId = async (host: LabHost) => (await onHost(host, "systemctl --user show docker -p InvocationID --value")).trim();
const rootlesskitCommandLine = (host: LabHost) => onHost(host, "tr '\\0' ' ' < /proc/$(systemctl --user show docker -p ExecMainPID --value)/cmdline");

describe("RootlessDockerNetwork through Pulumi's dynamic-provider host on a real host", { timeout: 600_000 }, () => {
  let host: LabHost;
  let provider: ProviderHost;
  let traceDir: string;
  let tracePath: string;
  let id: string;
  let state: Record<string, unknown>;
  const traceEvents = () =>
    readFileSync(tracePath, "utf8")
      .trim()
      .split("\n")
      .filter((line) => line !== "")
      .map((line) => JSON.parse(line) as { event: string });
  const resetTrace = () => writeFileSync(tracePath, "");
  const slirp = () => labInputs(host, { networkDriver: "slirp4netns", ipv6: true, verify: { targets: [{ address: host.target.ipv6, tcpPort: host.target.ipv6TcpPort }], required: true, timeoutSeconds: 45 } });
  const pasta = () => ({ ...slirp(), networkDriver: "pasta", pastaIpv6Compat: true });

  before(async () => {
    await labDown();
    [host] = await labUp({ hosts: 1 });
    traceDir = mkdtempSync(join(tmpdir(), "rdn-grpc-trace-"));
    tracePath = join(traceDir, "trace.jsonl");
    writeFileSync(tracePath, "");
    provider = await startProviderHost({ env: { [TRACE_ENV]: tracePath } });
    await provider.configure();
  });
  after(async () => {
    await provider?.stop();
    rmSync(traceDir, { recursive: true, force: true });
    await labDown();
  });

  it("Check accepts the inputs and Diff on a fresh host reports changes with one connection and one exec", async () => {
    const checked = await provider.check({}, slirp());
    assert.deepEqual(checked.failures, []);
    resetTrace();
    const diff = await provider.diff("", {}, slirp());
    assert.equal(diff.changes, "some");
    const events = traceEvents();
    assert.equal(events.filter((e) => e.event === "connect").length, 1);
    assert.equal(events.filter((e) => e.event === "exec").length, 1);
  });

  it("Create writes the drop-in, restarts on slirp4netns + IPv6 and returns verified reachability", async () => {
    const created = await provider.create(slirp());
    await assertInputsInSync(slirp());
    id = created.id;
    state = created.properties;
    assert.equal(id, `dev@${host.address}:22/docker.service/override.conf`);
    assert.equal(state.networkDriverInEffect, "slirp4netns");
    assert.equal(state.ipv6InEffect, true);
    assert.equal(state.restarted, true);
    assert.equal((state.verification as { reachable: boolean }).reachable, true);
    assert.match(await onHost(host, `cat ${DROP_IN}`), /DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS=--ipv6/);
    assert.match(await rootlesskitCommandLine(host), /--net=slirp4netns .*--ipv6|--ipv6.*--net=slirp4netns/);
  });

  it("Diff right after Create reports no changes, and Read mirrors the host with one connection and one exec", async () => {
    const diff = await provider.diff(id, state, slirp());
    assert.equal(diff.changes, "none");
    // The fleet's rollout context only feeds error messages: a new wave plan alone must not update (restart) a host.
    const rolledOut = await provider.diff(id, state, { ...slirp(), rollout: { fleet: "edge", host: "h1", waves: [["h1"], ["h2"]] } });
    assert.equal(rolledOut.changes, "none");
    resetTrace();
    const read = await provider.read(id, state);
    const events = traceEvents();
    assert.equal(events.filter((e) => e.event === "connect").length, 1);
    assert.equal(events.filter((e) => e.event === "exec").length, 1);
    assert.equal(read.inputs?.networkDriver, "slirp4netns");
    assert.equal(read.inputs?.ipv6, true);
  });

  it("a hand edit on the host shows in Diff and as the real value in Read's inputs (what preview --refresh shows)", async () => {
    await onHost(host, `sed -i 's/ROOTLESSKIT_NET=slirp4netns/ROOTLESSKIT_NET=pasta/' ${DROP_IN}`);
    const diff = await provider.diff(id, state, slirp());
    assert.equal(diff.changes, "some");
    const read = await provider.read(id, state);
    assert.equal(read.inputs?.networkDriver, "pasta");
  });

  it("Update converges to pasta + IPv6 (compat helper on rootlesskit 2.0.2) and restarts once", async () => {
    const before = await invocationId(host);
    const updated = await provider.update(id, state, pasta());
    await assertInputsInSync(pasta());
    state = updated.properties;
    assert.equal(state.networkDriverInEffect, "pasta");
    assert.equal(state.compatInUse, true);
    assert.equal((state.verification as { reachable: boolean }).reachable, true);
    assert.notEqual(await invocationId(host), before);
    assert.match(await rootlesskitCommandLine(host), /--net=pasta/);
  });

  it("a second Update with the same inputs writes nothing and does not restart", async () => {
    const before = { id: await invocationId(host), content: await onHost(host, `cat ${DROP_IN}`) };
    const updated = await provider.update(id, state, pasta());
    await assertInputsInSync(pasta());
    assert.equal(updated.properties.restarted, false);
    assert.equal(await invocationId(host), before.id);
    assert.equal(await onHost(host, `cat ${DROP_IN}`), before.content);
  });

  it("Delete removes our settings (the file, since nothing else was in it) and restarts on the defaults", async () => {
    await provider.delete(id, state);
    await assertInputsRemoved(pasta());
    assert.equal((await userExec(host.name, `test -e ${DROP_IN}`)).exitCode, 1);
    assert.match(await rootlesskitCommandLine(host), /--net=slirp4netns/);
    assert.doesNotMatch(await rootlesskitCommandLine(host), / --ipv6\b/);
  });

  it("a capability error fails Diff (pulumi preview) with the host and the fix, and writes nothing", async () => {
    const inputs = labInputs(host, { networkDriver: "pasta", ipv6: true });
    await assert.rejects(provider.diff(id, state, inputs), (error: unknown) => {
      assert.ok(error instanceof ProviderHostCallError, String(error));
      assert.match(error.details, new RegExp(`dev@${host.address.replace(/\./g, "\\.")}:22`));
      assert.match(error.details, /pastaIpv6Compat/);
      return true;
    });
    assert.equal((await userExec(host.name, `test -e ${DROP_IN}`)).exitCode, 1);
  });
});
