/**
 * The CLI against real lab hosts, run as users run it (the compiled bin in a child process):
 * plan finds differences, apply converges and verifies, plan is then clean, and a hand edit shows up
 * as drift naming the host and the property.
 */
import assert from "node:assert/strict";
import { execFile, execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { stringify } from "yaml";
import type { LabHost } from "../../lab/api";
import { assertReportInSync } from "../helpers/in-sync";

process.env.RDL_LAB = "rdlcli";
// Loaded after RDL_LAB is set: the lab picks its instance from the environment.
const { labDown, labUp, userExec } = require("../../lab/api") as typeof import("../../lab/api");

const CLI = resolve(__dirname, "../../provider/cli/main.js");

interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

function runCliProcess(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<CliRun> {
  return new Promise((done) => {
    execFile(process.execPath, [CLI, ...args], { env, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      done({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe("rootless-docker-net against lab hosts", { timeout: 600_000 }, () => {
  let hosts: LabHost[];
  let dir: string;
  let hostsFile: string;

  before(async () => {
    hosts = await labUp({ hosts: 2, profile: "trixie" });
    dir = mkdtempSync(join(tmpdir(), "rdn-cli-lab-"));
    hostsFile = join(dir, "hosts.yaml");
    writeFileSync(
      hostsFile,
      stringify({
        defaults: { networkDriver: "slirp4netns", ipv6: true, verify: { required: true, timeoutSeconds: 30 } },
        hosts: [{ name: hosts[1].name, networkDriver: "pasta", pastaIpv6Compat: true }],
      }),
    );
  });

  after(async () => {
    await labDown();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const json = async (command: string) => {
    const run = await runCliProcess([command, "--lab", "--hosts", hostsFile, "--json"]);
    assert.ok(run.stdout.trim().startsWith("{"), `no JSON from ${command} (exit ${run.code}):\n${run.stdout}\n${run.stderr}`);
    return { code: run.code, report: JSON.parse(run.stdout), stderr: run.stderr };
  };

  it("plan exits 2 before apply and names each host and what differs", async () => {
    const { code, report } = await json("plan");
    assert.equal(code, 2, JSON.stringify(report, null, 2));
    for (const host of hosts) {
      const row = report.hosts.find((candidate: { name: string }) => candidate.name === host.name);
      assert.equal(row?.status, "differs", `${host.name}: ${JSON.stringify(row)}`);
      assert.ok(row.changes.some((change: { property: string }) => /ipv6|FLAGS|networkDriver|NET/i.test(change.property)), JSON.stringify(row.changes));
    }
  });

  it("apply exits 0 with IPv6 verified on both hosts, then plan exits 0", async () => {
    const applied = await json("apply");
    assert.equal(applied.code, 0, JSON.stringify(applied.report, null, 2));
    assertReportInSync(applied.report);
    for (const row of applied.report.hosts) {
      assert.equal(row.status, "converged", JSON.stringify(row));
      assert.equal(row.verification?.reachable, true, JSON.stringify(row.verification));
    }
    const planned = await json("plan");
    assert.equal(planned.code, 0, JSON.stringify(planned.report, null, 2));
  });

  it("an SSH agent alone is the credential: SSH_AUTH_SOCK as @pulumi/command takes it, or agentSocketPath with ${VAR}", async () => {
    const agentDir = mkdtempSync(join(tmpdir(), "rdn-agent-"));
    const socket = join(agentDir, "agent.sock");
    // -D: in the foreground, so the test owns the process and ends it by its pid.
    const agent: ChildProcess = spawn("ssh-agent", ["-D", "-a", socket], { stdio: "ignore" });
    try {
      await waitFor(() => existsSync(socket));
      const withAgent = { ...process.env, SSH_AUTH_SOCK: socket };
      execFileSync("ssh-add", [hosts[0].privateKeyPath], { env: withAgent, stdio: "pipe" });
      const host = hosts[0];
      const entry = { name: host.name, connection: { host: host.address, port: host.port, user: host.user, hostKey: host.hostPublicKey } };
      const settings = { networkDriver: "slirp4netns", ipv6: true, verify: { targets: [{ address: host.target.ipv6, tcpPort: host.target.ipv6TcpPort }] } };
      const file = (connection: object) => {
        const path = join(agentDir, `hosts-${Object.keys(connection).length}.yaml`);
        writeFileSync(path, stringify({ defaults: { ...settings, connection }, hosts: [entry] }));
        return path;
      };
      const { SSH_AUTH_SOCK: _none, ...withoutAgent } = process.env;

      const viaEnvironment = await runCliProcess(["plan", "--hosts", file({}), "--json", "--quiet"], withAgent);
      const planned = JSON.parse(viaEnvironment.stdout);
      assert.equal(planned.errors.length, 0, viaEnvironment.stdout);
      assert.equal(planned.hosts[0].host, `${host.user}@${host.address}:${host.port}`);

      const viaFile = await runCliProcess(["plan", "--hosts", file({ agentSocketPath: "${RDN_AGENT_DIR}/agent.sock" }), "--json", "--quiet"], { ...withoutAgent, RDN_AGENT_DIR: agentDir });
      assert.equal(JSON.parse(viaFile.stdout).errors.length, 0, viaFile.stdout);

      const noAgent = await runCliProcess(["plan", "--hosts", file({}), "--json"], withoutAgent);
      assert.equal(noAgent.code, 1);
      assert.deepEqual(
        JSON.parse(noAgent.stdout).errors.map((error: { property: string; message: string }) => [error.property, error.message]),
        [["hosts[0].connection", "hosts[0].connection: needs a credential"]],
      );
    } finally {
      agent.kill();
      rmSync(agentDir, { recursive: true, force: true });
    }
  });

  it("plan exits 2 after a hand edit on one host, naming that host and property in the table", async () => {
    const edited = hosts[0].name;
    const edit = await userExec(edited, "sed -i 's/DOCKERD_ROOTLESS_ROOTLESSKIT_MTU=[0-9]*/DOCKERD_ROOTLESS_ROOTLESSKIT_MTU=1500/' ~/.config/systemd/user/docker.service.d/override.conf");
    assert.equal(edit.exitCode, 0, edit.stderr);

    const { code, report } = await json("plan");
    assert.equal(code, 2);
    const statuses = Object.fromEntries(report.hosts.map((row: { name: string; status: string }) => [row.name, row.status]));
    assert.deepEqual(statuses, { [edited]: "differs", [hosts[1].name]: "in-sync" });

    const text = await runCliProcess(["plan", "--lab", "--hosts", hostsFile]);
    assert.equal(text.code, 2);
    // One row per property: the variable, the input that declares it, desired, then the file level.
    assert.match(text.stdout, new RegExp(`${edited} \\(.*\\): DIFFERS\\n(.*\\n)*\\s*DOCKERD_ROOTLESS_ROOTLESSKIT_MTU\\s+mtu\\s+65520\\s+1500`));
    // Only the file differs (a hand edit): the apply writes and reloads, and the daemon keeps running as it is.
    assert.match(text.stdout, /\n {4}restart docker\.service: no \(file written but the running daemon already matches: no restart\)\n/);
  });
});

/** Polls for a condition, up to 20 s (an agent's socket appears within milliseconds on an idle machine). */
async function waitFor(condition: () => boolean): Promise<void> {
  for (let attempt = 0; attempt < 200 && !condition(); attempt++) await new Promise((resolve) => setTimeout(resolve, 100));
  assert.ok(condition(), "timed out waiting");
}
