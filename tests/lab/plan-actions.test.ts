/**
 * The plan tells the truth about what the apply will do (issue 9, item 11), on a real host: after the apply, our
 * drop-in on the host is byte for byte the "before" file patched (GNU patch) with the plan's diff; the unit was
 * restarted (InvocationID changed) exactly when the plan said restart, and systemd reloaded (the user manager's
 * journal) exactly when it said daemon-reload. A no-op plan says no restart, and the apply keeps the InvocationID.
 * `script facts` is what the engine runs: piped into `ssh … sh` it gives the facts the engine reads.
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { stringify } from "yaml";

process.env.RDL_LAB = "planactions";

import { hostExec, labDown, labUp, type LabHost } from "../../lab/api";
import type { PlanDocument, ScriptDocument } from "../../provider/api";
import { runCli } from "../../provider/cli/main";
import type { ApplyReport } from "../../provider/cli/run";
import { parseFacts } from "../../provider/core/facts";
import { parseVerification } from "../../provider/core/verify";
import * as engine from "../../provider/engine";
import { DROP_IN, hostState, startFrom, userCommand } from "../helpers/host-state";
import { labSpec } from "../helpers/lab-spec";

/** Our settings in force without IPv6: declaring ipv6 then writes FLAGS, reloads and restarts. */
const START = "[Service]\n# kept as written\nEnvironment=DOCKERD_ROOTLESS_ROOTLESSKIT_NET=slirp4netns DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER=builtin DOCKERD_ROOTLESS_ROOTLESSKIT_MTU=65520\n";

let host: LabHost;
const dir = mkdtempSync(join(tmpdir(), "planactions-"));
const hostsFile = join(dir, "hosts.yaml");

before(async () => {
  await labDown();
  [host] = await labUp({ hosts: 1 });
  writeFileSync(hostsFile, stringify({ defaults: { networkDriver: "slirp4netns", ipv6: true, verify: { enabled: false } }, hosts: [] }));
});
after(async () => {
  await labDown();
  rmSync(dir, { recursive: true, force: true });
});

async function cli<T>(args: string[]): Promise<{ code: number; document: T; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const code = await runCli([...args, "--lab", "--hosts", hostsFile, "--json"], { stdout: (text) => (stdout += text), stderr: (text) => (stderr += text), interactive: false });
  return { code, document: JSON.parse(stdout) as T, stderr };
}

const invocationId = async () => (await userCommand(host, "systemctl --user show docker -p InvocationID --value")).trim();
const journalCursor = async () => (await hostExec(host.name, "journalctl -n 0 --show-cursor -q | sed -n 's/^-- cursor: //p'")).stdout.trim();
/** The user manager's own "Reloading" lines since the cursor: one per daemon-reload. */
async function reloadsSince(cursor: string): Promise<string[]> {
  const uid = (await userCommand(host, "id -u")).trim();
  const out = (await hostExec(host.name, `journalctl --after-cursor='${cursor}' _UID=${uid} _COMM=systemd -o cat | grep -i '^Reloading' || true`)).stdout;
  return out.split("\n").filter((line) => line.trim() !== "");
}

/** GNU patch applied to `before` with the plan's diff: the plan's "after" side. */
function patched(before: string, diff: string): string {
  const file = join(dir, "dropin");
  writeFileSync(file, before);
  writeFileSync(join(dir, "plan.diff"), diff);
  execFileSync("patch", ["--binary", "--quiet", "--no-backup-if-mismatch", file, join(dir, "plan.diff")]);
  return readFileSync(file, "utf8");
}

describe("the plan says what the apply will do, and the apply does exactly that", { timeout: 600_000 }, () => {
  it("a change: the drop-in after the apply is the plan's diff applied, restarted and reloaded as said", async () => {
    await startFrom(host, START);
    const plan = await cli<PlanDocument>(["plan", "--diff"]);
    assert.equal(plan.code, 2, JSON.stringify(plan.document));
    const row = plan.document.hosts[0]!;
    const actions = row.actions!;
    assert.deepEqual(actions.files.map((file) => [file.path, file.role, file.action]), [[DROP_IN, "drop-in", "update"]]);
    assert.equal(actions.daemonReload.will, true);
    assert.equal(actions.restart.will, true);
    assert.match(actions.restart.reason, /ipv6, extraFlags \(DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS\): running no flags, declared --ipv6/);
    assert.deepEqual(plan.document.summary.restart, [host.name]);
    assert.ok(row.changes.some((change) => change.property === "DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS" && change.input === "ipv6, extraFlags"), JSON.stringify(row.changes));

    const before = (await hostState(host)).dropIn!;
    const [invocation, cursor] = [await invocationId(), await journalCursor()];
    const applied = await cli<ApplyReport>(["apply"]);
    assert.equal(applied.code, 0, JSON.stringify(applied.document));
    assert.equal((await hostState(host)).dropIn, patched(before, actions.files[0]!.diff!), "the file on the host is the plan's after side, byte for byte");
    assert.notEqual(await invocationId(), invocation, "the plan said restart: the unit restarted");
    assert.ok((await reloadsSince(cursor)).length >= 1, "the plan said daemon-reload: systemd reloaded");
  });

  it("a no-op: the plan says no write, no reload, no restart, and the apply keeps the InvocationID and reloads nothing", async () => {
    const plan = await cli<PlanDocument>(["plan", "--diff"]);
    assert.equal(plan.code, 0, JSON.stringify(plan.document));
    const actions = plan.document.hosts[0]!.actions!;
    assert.deepEqual(actions.files, []);
    assert.deepEqual(actions.daemonReload, { will: false, reason: "no unit file changes: no daemon-reload" });
    assert.deepEqual(actions.restart, { will: false, reason: "the running daemon already has the declared settings: no restart" });
    assert.deepEqual(plan.document.summary.restart, []);

    const before = (await hostState(host)).dropIn;
    const [invocation, cursor] = [await invocationId(), await journalCursor()];
    const applied = await cli<ApplyReport>(["apply"]);
    assert.equal(applied.code, 0, JSON.stringify(applied.document));
    assert.equal(applied.document.hosts[0]!.status, "unchanged");
    assert.equal((await hostState(host)).dropIn, before);
    assert.equal(await invocationId(), invocation, "the plan said no restart: the same invocation runs");
    assert.deepEqual(await reloadsSince(cursor), [], "the plan said no daemon-reload");
  });

  it("script facts piped into ssh … sh on the host gives the facts the engine reads", async () => {
    const printed = await cli<ScriptDocument>(["script", "facts", "--host", host.name]);
    assert.equal(printed.code, 0, JSON.stringify(printed.document));
    const spec = labSpec(host, { networkDriver: "slirp4netns", ipv6: true, verify: { enabled: false } });
    assert.equal(printed.document.script, engine.factsScriptFor(spec));
    const byHand = (script: string) =>
      spawnSync(
        "ssh",
        ["-i", host.privateKeyPath, "-p", String(host.port), "-o", "BatchMode=yes", "-o", `UserKnownHostsFile=${knownHosts()}`, "-o", "StrictHostKeyChecking=yes", `${host.user}@${host.address}`, "sh"],
        { input: script, encoding: "utf8", timeout: 120_000 },
      );
    const ssh = byHand(printed.document.script!);
    assert.equal(ssh.status, 0, ssh.stderr);
    const { facts } = await engine.inspectHost(spec);
    assert.deepEqual(parseFacts(ssh.stdout, { unit: spec.unit, dropInName: spec.dropInName }), facts);
    // The verification script is the engine's own builder's, with this host's target in its header.
    const verify = await cli<ScriptDocument>(["script", "verify", "--host", host.name]);
    assert.equal(verify.code, 0, JSON.stringify(verify.document));
    assert.ok(verify.document.script!.startsWith("#!/bin/sh\n"));
    assert.match(verify.document.script!, new RegExp(`^RDN_TARGETS='${host.target.ipv6},${host.target.ipv6TcpPort},1'$`, "m"));
    // Run by hand as printed, it proves what the engine's verification proves.
    const verifyRun = byHand(verify.document.script!);
    assert.equal(verifyRun.status, 0, verifyRun.stderr);
    const verification = parseVerification(verifyRun.stdout, { pingGroupRange: facts.pingGroupRange });
    assert.equal(verification.reachable, true, JSON.stringify(verification));
    assert.equal(verification.covers, "namespace");
  });

  it("script apply connects, plans, and prints the apply script only when there is something to do", async () => {
    const inSync = await cli<ScriptDocument>(["script", "apply", "--host", host.name]);
    assert.equal(inSync.code, 0, JSON.stringify(inSync.document));
    assert.equal(inSync.document.script, null);
    await startFrom(host, START);
    const pending = await cli<ScriptDocument>(["script", "apply", "--host", host.name]);
    assert.equal(pending.code, 0, JSON.stringify(pending.document));
    assert.match(pending.document.script!, /^#!\/bin\/sh\nrdn_unit='docker\.service'\n/);
    assert.match(pending.document.script!, /\nrdn_restart='1'\n/);
  });
});

function knownHosts(): string {
  const file = join(dir, "known_hosts");
  writeFileSync(file, `[${host.address}]:${host.port} ${host.hostPublicKey}\n${host.address} ${host.hostPublicKey}\n`);
  return file;
}
