import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { readHostsFile, resolveHosts, type ResolvedHost } from "../../provider/cli/hosts";
import { labHostEntries } from "../../provider/cli/lab";
import { runCli, type CliIo } from "../../provider/cli/main";
import type { Engine } from "../../provider/cli/run";
import type { InspectResult } from "../../provider/engine/types";

const HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
let dir: string;
let privateKey: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), "rdn-hosts-"));
  privateKey = generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  writeFileSync(join(dir, "id_test"), privateKey, { mode: 0o600 });
});
after(() => rmSync(dir, { recursive: true, force: true }));

function hostsFile(yaml: string): string {
  const path = join(dir, `hosts-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(path, yaml);
  return path;
}

function resolve(yaml: string, lab?: Parameters<typeof resolveHosts>[1]) {
  const document = readHostsFile(hostsFile(yaml));
  assert.ok(document.ok, JSON.stringify(!document.ok && document.problems));
  return resolveHosts(document.value, lab);
}

function resolved(yaml: string, lab?: Parameters<typeof resolveHosts>[1]): ResolvedHost[] {
  const result = resolve(yaml, lab);
  assert.ok(result.ok, JSON.stringify(!result.ok && result.problems));
  return result.value;
}

function problems(yaml: string): string[] {
  const result = resolve(yaml);
  assert.equal(result.ok, false);
  return result.ok ? [] : result.problems.map((problem) => `${problem.property}: ${problem.reason}`);
}

const TWO_HOSTS = `
defaults:
  networkDriver: pasta
  ipv6: true
  connection: { user: dev, privateKeyPath: id_test, hostKey: "${HOST_KEY}" }
  verify: { targets: [{ address: "fd99::1", tcpPort: 8081 }], timeoutSeconds: 20 }
hosts:
  - name: web1
    connection: { host: 10.77.0.2 }
  - name: web2
    connection: { host: 10.77.1.2, port: 2222 }
    networkDriver: slirp4netns
    verify: { timeoutSeconds: 5 }
`;

describe("hosts file", () => {
  it("merges defaults with each host, reads the key file, and validates with the resource's schema", () => {
    const [web1, web2] = resolved(TWO_HOSTS);
    assert.equal(web1.name, "web1");
    assert.equal(web1.spec.networkDriver, "pasta");
    assert.equal(web1.spec.portDriver, "implicit", "the schema's default for pasta was applied");
    assert.equal(web1.spec.connection.privateKey, privateKey, "privateKeyPath is read relative to the hosts file");
    assert.equal(web1.spec.connection.user, "dev");
    assert.equal(web2.spec.connection.port, 2222);
    assert.equal(web2.spec.networkDriver, "slirp4netns");
    assert.equal(web2.spec.portDriver, "builtin");
    assert.deepEqual(web2.spec.verify.targets, [{ address: "fd99::1", tcpPort: 8081, icmp: true }]);
    assert.equal(web2.spec.verify.timeoutSeconds, 5);
  });

  it("refuses inline secrets and names where they are", () => {
    const found = problems(`
hosts:
  - name: web1
    networkDriver: pasta
    connection: { host: 10.0.0.1, password: hunter2, privateKey: "-----BEGIN" }
`);
    assert.ok(found.some((line) => line.startsWith("hosts[0].connection.password: inline secrets are refused")), found.join("\n"));
    assert.ok(found.some((line) => line.startsWith("hosts[0].connection.privateKey: inline secrets are refused")), found.join("\n"));
  });

  it("reports schema problems with the host's path and name, and duplicate names", () => {
    const found = problems(`
defaults: { connection: { user: dev, privateKeyPath: id_test } }
hosts:
  - { name: a, connection: { host: 10.0.0.1 }, networkDriver: pasta, portDriver: builtin }
  - { name: a, connection: { host: 10.0.0.2, port: 70000 }, networkDriver: slirp4netns }
`);
    assert.ok(found.some((line) => /^hosts\[0\]\.portDriver: a: portDriver "builtin" does not work with networkDriver "pasta"/.test(line)), found.join("\n"));
    assert.ok(found.some((line) => /^hosts\[1\]\.connection\.port: a:/.test(line)), found.join("\n"));
    assert.ok(found.some((line) => /^hosts\[1\]\.name: "a" is already the name of hosts\[0\]/.test(line)), found.join("\n"));
  });

  it("reports an unreadable key file and unknown top-level keys", () => {
    assert.ok(problems(`hosts: [{ name: a, networkDriver: pasta, connection: { host: 10.0.0.1, privateKeyPath: missing } }]`).some((line) => /privateKeyPath: cannot read .*missing: ENOENT/.test(line)));
    const document = readHostsFile(hostsFile(`host: []\nhosts: []`));
    assert.ok(!document.ok);
    assert.equal(document.problems[0].property, "host");
  });

  it("takes lab hosts with pinned host keys and the lab target, overridden by name from the file", () => {
    const lab = labHostEntries([
      { name: "h1", address: "10.77.0.2", port: 22, user: "dev", privateKeyPath: join(dir, "id_test"), hostPublicKey: HOST_KEY, target: { ipv6: "fd99::1", ipv6TcpPort: 8081 } },
      { name: "h2", address: "10.77.1.2", port: 22, user: "dev", privateKeyPath: join(dir, "id_test"), hostPublicKey: HOST_KEY, target: { ipv6: "fd99::1", ipv6TcpPort: 8081 } },
    ]);
    const [h1, h2] = resolved(`defaults: { networkDriver: slirp4netns, ipv6: true }\nhosts: [{ name: h2, networkDriver: pasta, pastaIpv6Compat: true }]`, lab);
    assert.equal(h1.spec.connection.hostKey, HOST_KEY);
    assert.deepEqual(h1.spec.verify.targets, [{ address: "fd99::1", tcpPort: 8081, icmp: true }]);
    assert.equal(h1.spec.networkDriver, "slirp4netns");
    assert.equal(h2.spec.networkDriver, "pasta");
    assert.equal(h2.spec.pastaIpv6Compat, true);
    const unknown = resolve(`defaults: { networkDriver: pasta }\nhosts: [{ name: h9, ipv6: true }]`, lab);
    assert.ok(!unknown.ok);
    assert.match(unknown.problems[0].reason, /"h9" is not a lab host \(lab hosts: h1, h2\)/);
  });
});

describe("runCli", () => {
  function io(engine: Partial<Engine>) {
    const out: string[] = [];
    const err: string[] = [];
    const fail = async () => assert.fail("unexpected engine call");
    const cliIo: CliIo = {
      stdout: (text) => out.push(text),
      stderr: (text) => err.push(text),
      interactive: false,
      engine: { inspectHost: fail, applyHost: fail, verifyHost: fail, ...engine },
    };
    return { cliIo, out, err };
  }

  it("prints one JSON document with --json, never the key, and returns the plan's exit code", async () => {
    const { cliIo, out } = io({
      inspectHost: async (spec) =>
        ({
          host: `dev@${spec.connection.host}:22`,
          plan: { changes: [{ level: "file", property: "networkDriver", desired: "pasta" }], problems: [], writes: [], daemonReload: true, restart: true, compatInUse: false, differs: true },
          running: { networkDriver: "slirp4netns", portDriver: "builtin", ipv6: false, mtu: 1500 },
        }) as unknown as InspectResult,
    });
    const code = await runCli(["plan", "--hosts", hostsFile(TWO_HOSTS), "--json"], cliIo);
    assert.equal(code, 2);
    const report = JSON.parse(out.join(""));
    assert.deepEqual(report.hosts.map((row: { name: string; status: string }) => `${row.name}:${row.status}`), ["web1:differs", "web2:differs"]);
    assert.ok(!out.join("").includes("PRIVATE KEY"));
  });

  it("exits 1 and touches no host when the hosts file is invalid", async () => {
    const { cliIo, err } = io({});
    const code = await runCli(["apply", "--hosts", hostsFile(`hosts: [{ name: a, connection: { host: 10.0.0.1, password: x } }]`)], cliIo);
    assert.equal(code, 1);
    assert.match(err.join(""), /invalid input, nothing was done:\n.*hosts\[0\]\.connection\.password: inline secrets are refused/);
  });

  it("exits 1 with usage on a bad command line", async () => {
    const { cliIo, err } = io({});
    assert.equal(await runCli(["plan"], cliIo), 1);
    assert.match(err.join(""), /usage: rootless-docker-net/);
  });
});
