import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { readHostsFile, resolveHosts, type ResolvedHost, type ResolveOptions } from "../../provider/cli/hosts";
import { labHostEntries } from "../../lab/cli-hosts";
import { runCli, type CliIo } from "../../provider/cli/main";
import type { Engine } from "../../provider/cli/run";
import type { NetworkSpec } from "../../provider/core/types";
import { ConnectionError } from "../../provider/errors/connection-error";
import type { InspectResult } from "../../provider/engine/types";
import { NO_DAEMON } from "../../provider/core/running";

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

function resolve(yaml: string, options?: ResolveOptions) {
  const document = readHostsFile(hostsFile(yaml));
  assert.ok(document.ok, JSON.stringify(!document.ok && document.problems));
  return resolveHosts(document.value, options);
}

function resolved(yaml: string, options?: ResolveOptions): ResolvedHost[] {
  const result = resolve(yaml, options);
  assert.ok(result.ok, JSON.stringify(!result.ok && result.problems));
  return result.value;
}

function problems(yaml: string, options?: ResolveOptions): string[] {
  const result = resolve(yaml, options);
  assert.equal(result.ok, false);
  return result.ok ? [] : result.problems.map((problem) => `${problem.property}${problem.host ? ` (${problem.host})` : ""}: ${problem.reason}${problem.fix ? `: ${problem.fix}` : ""}`);
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
    assert.ok(found.some((line) => line.startsWith("hosts[0].connection.password (web1): inline secrets are refused")), found.join("\n"));
    assert.ok(found.some((line) => line.startsWith("hosts[0].connection.privateKey (web1): inline secrets are refused")), found.join("\n"));
    assert.ok(!found.some((line) => /must be the text of a private key|needs a credential/.test(line)), `a refused secret is not checked again:\n${found.join("\n")}`);
  });

  it("reports schema problems with the host's path and name, and duplicate names", () => {
    const found = problems(`
defaults: { connection: { user: dev, privateKeyPath: id_test } }
hosts:
  - { name: a, connection: { host: 10.0.0.1 }, networkDriver: pasta, portDriver: builtin }
  - { name: a, connection: { host: 10.0.0.2, port: 70000 }, networkDriver: slirp4netns }
`);
    assert.ok(found.some((line) => /^hosts\[0\]\.portDriver \(a\): portDriver "builtin" does not work with networkDriver "pasta"/.test(line)), found.join("\n"));
    assert.ok(found.some((line) => /^hosts\[1\]\.connection\.port \(a\): /.test(line)), found.join("\n"));
    assert.ok(found.some((line) => /^hosts\[1\]\.name: "a" is already the name of hosts\[0\]/.test(line)), found.join("\n"));
  });

  it("reports an unreadable key file and unknown top-level keys", () => {
    assert.ok(problems(`hosts: [{ name: a, networkDriver: pasta, connection: { host: 10.0.0.1, privateKeyPath: missing } }]`).some((line) => /privateKeyPath \(a\): cannot read .*missing: ENOENT/.test(line)));
    const document = readHostsFile(hostsFile(`host: []\nhosts: []`));
    assert.ok(!document.ok);
    assert.equal(document.problems[0].property, "host");
  });

  it("reports a problem of defaults once, where it is written, with the key it most likely means", () => {
    const found = problems(`
defaults:
  netwrokDriver: pasta
  connection: { user: dev, privateKeyPath: id_test, hostKey: "${HOST_KEY}" }
hosts:
  - { name: a, connection: { host: 10.0.0.1 } }
  - { name: b, connection: { host: 10.0.0.2, prot: 22 } }
  - { name: c, connection: { host: 10.0.0.3 }, verify: { targets: [{ address: "fd99::1", tcpPort: 0 }] } }
`);
    assert.deepEqual(found, [
      'defaults.netwrokDriver: is not a known input: did you mean "networkDriver"?',
      'hosts[1].connection.prot (b): is not a known input: did you mean "port"?',
      "hosts[2].verify.targets[0].tcpPort (c): Too small: expected number to be >=1",
    ]);
  });

  it("says required for a missing value, and never assumes root", () => {
    assert.deepEqual(problems(`hosts: [{ name: a, connection: { host: 10.0.0.1, privateKeyPath: id_test } }]`), [
      "hosts[0].connection.user (a): required: set connection.user to the user that runs rootless Docker (not root)",
      "hosts[0].networkDriver (a): required: set networkDriver to one of slirp4netns, pasta, vpnkit, lxc-user-nic, gvisor-tap-vsock (pasta for IPv6 on RootlessKit ≥ 2.0)",
    ]);
    const nameless = readHostsFile(hostsFile(`hosts: [{ networkDriver: pasta }]`));
    assert.ok(!nameless.ok);
    assert.deepEqual([nameless.problems[0].property, nameless.problems[0].reason], ["hosts[0].name", "required"]);
  });

  it("gives YAML errors with line, column and the parser's words, never the file's text", () => {
    const document = readHostsFile(hostsFile(`defaults:
  connection: { user: dev, password: hunter2 }
   networkDriver: pasta
`));
    assert.ok(!document.ok);
    assert.match(document.problems[0].reason, /^is not valid YAML: .+ \(line 3, column \d+\)$/);
    assert.doesNotMatch(JSON.stringify(document.problems), /hunter2|networkDriver/);
  });

  it("expands ${VARIABLE} in paths, takes a key from privateKeyEnv, and names an unset variable", () => {
    const env = { KEYS: dir, DEPLOY_KEY: privateKey };
    const [fromPath] = resolved(`defaults: { networkDriver: pasta }\nhosts: [{ name: a, connection: { host: 10.0.0.1, user: dev, privateKeyPath: "\${KEYS}/id_test", knownHostsPath: "\${KEYS}/known_hosts" } }]`, { env });
    assert.equal(fromPath.spec.connection.privateKey, privateKey);
    assert.equal(fromPath.spec.connection.knownHostsPath, join(dir, "known_hosts"));
    const [fromEnv] = resolved(`hosts: [{ name: a, networkDriver: pasta, connection: { host: 10.0.0.1, user: dev, privateKeyEnv: DEPLOY_KEY } }]`, { env });
    assert.equal(fromEnv.spec.connection.privateKey, privateKey);
    assert.deepEqual(problems(`hosts: [{ name: a, networkDriver: pasta, connection: { host: 10.0.0.1, user: dev, privateKeyPath: "\${NOPE}/id", agentSocketPath: "\${NOPE}/s" } }]`, { env }), [
      "hosts[0].connection.agentSocketPath (a): names ${NOPE}, which is not set in the environment: export NOPE, or write the path itself",
      "hosts[0].connection.privateKeyPath (a): names ${NOPE}, which is not set in the environment: export NOPE, or write the path itself",
    ]);
    assert.deepEqual(problems(`hosts: [{ name: a, networkDriver: pasta, connection: { host: 10.0.0.1, user: dev, privateKeyEnv: NOPE } }]`, { env }), [
      "hosts[0].connection.privateKeyEnv (a): the environment variable NOPE is not set: export NOPE with the text of the private key",
    ]);
  });

  it("takes the agent of SSH_AUTH_SOCK as the credential when no key is given", () => {
    const yaml = `hosts: [{ name: a, networkDriver: pasta, connection: { host: 10.0.0.1, user: dev } }]`;
    assert.equal(resolved(yaml, { env: { SSH_AUTH_SOCK: "/tmp/agent.sock" } })[0].spec.connection.privateKey, undefined);
    assert.deepEqual(problems(yaml, { env: {} }), ["hosts[0].connection (a): needs a credential: set privateKey, password or agentSocketPath, or run an SSH agent (SSH_AUTH_SOCK) with the key loaded"]);
  });

  it("--limit keeps the named hosts and names a host that does not exist, with the nearest name", () => {
    assert.deepEqual(resolved(TWO_HOSTS, { limit: ["web2"] }).map((host) => host.name), ["web2"]);
    assert.deepEqual(problems(TWO_HOSTS, { limit: ["web3"] }), ['--limit: "web3" is not a host of the hosts file: did you mean "web1"?']);
  });

  it("takes lab hosts with pinned host keys and the lab target, overridden by name from the file", () => {
    const lab = labHostEntries([
      { name: "h1", address: "10.77.0.2", port: 22, user: "dev", privateKeyPath: join(dir, "id_test"), hostPublicKey: HOST_KEY, target: { ipv6: "fd99::1", ipv6TcpPort: 8081 } },
      { name: "h2", address: "10.77.1.2", port: 22, user: "dev", privateKeyPath: join(dir, "id_test"), hostPublicKey: HOST_KEY, target: { ipv6: "fd99::1", ipv6TcpPort: 8081 } },
    ]);
    const [h1, h2] = resolved(`defaults: { networkDriver: slirp4netns, ipv6: true }\nhosts: [{ name: h2, networkDriver: pasta, pastaIpv6Compat: true }]`, { lab });
    assert.equal(h1.spec.connection.hostKey, HOST_KEY);
    assert.deepEqual(h1.spec.verify.targets, [{ address: "fd99::1", tcpPort: 8081, icmp: true }]);
    assert.equal(h1.spec.networkDriver, "slirp4netns");
    assert.equal(h2.spec.networkDriver, "pasta");
    assert.equal(h2.spec.pastaIpv6Compat, true);
    const unknown = resolve(`defaults: { networkDriver: pasta }\nhosts: [{ name: h9, ipv6: true }]`, { lab });
    assert.ok(!unknown.ok);
    assert.deepEqual([unknown.problems[0].reason, unknown.problems[0].fix], ['"h9" is not a lab host', "lab hosts: h1, h2"]);
  });
});

describe("runCli", () => {
  function io(engine: Partial<Engine> = {}) {
    const out: string[] = [];
    const err: string[] = [];
    const fail = async () => assert.fail("unexpected engine call");
    const cliIo: CliIo = {
      stdout: (text) => out.push(text),
      stderr: (text) => err.push(text),
      interactive: false,
      engine: { inspectHost: fail, applyHost: fail, verifyHost: fail, ...engine },
      env: {},
    };
    return { cliIo, out, err, json: () => JSON.parse(out.join("")) };
  }
  const inspect = async (spec: NetworkSpec) =>
    ({
      host: `dev@${spec.connection.host}:22`,
      plan: {
        changes: [{ level: "file", property: "networkDriver", desired: "pasta" }],
        problems: [],
        writes: [],
        daemonReload: true,
        restart: true,
        compatInUse: false,
        differs: true,
        daemonReloadReason: "a unit file changed on disk since the last daemon-reload (NeedDaemonReload=yes)",
        restartReason: "networkDriver (DOCKERD_ROOTLESS_ROOTLESSKIT_NET): running --net=slirp4netns, declared pasta",
      },
      facts: { dropIn: { path: "/home/dev/.config/systemd/user/docker.service.d/override.conf" }, daemonJson: { path: "/home/dev/.config/docker/daemon.json" }, compatScript: { path: "/home/dev/.local/lib/x" } },
      running: { ...NO_DAEMON, networkDriver: "slirp4netns", portDriver: "builtin", ipv6: false, mtu: 1500, disableHostLoopback: true },
    }) as unknown as InspectResult;
  const tool = { name: "rootless-docker-net", version: (require("../../../package.json") as { version: string }).version };

  it("prints one JSON document with --json, never the key, and returns the plan's exit code", async () => {
    const { cliIo, out, json } = io({ inspectHost: inspect });
    const code = await runCli(["plan", "--hosts", hostsFile(TWO_HOSTS), "--json", "--quiet"], cliIo);
    assert.equal(code, 2);
    const report = json();
    assert.deepEqual([report.schemaVersion, report.tool, report.command, report.ok, report.exitCode, report.errors], [1, tool, "plan", false, 2, []]);
    assert.deepEqual(report.hosts.map((row: { name: string; status: string }) => `${row.name}:${row.status}`), ["web1:differs", "web2:differs"]);
    assert.ok(!out.join("").includes("PRIVATE KEY"));
  });

  it("--json gives a host's failure as a structured error and its warnings", async () => {
    const { cliIo, json } = io({
      inspectHost: async (spec, opts) => {
        if (spec.connection.host === "10.77.1.2") throw new ConnectionError("connection refused", "start sshd", { host: "dev@10.77.1.2:2222", step: "connect", evidence: ["attempt 1: ECONNREFUSED"] });
        opts?.onWarning?.("dev@10.77.0.2:22: WARNING: host-key verification is off");
        return inspect(spec);
      },
    });
    assert.equal(await runCli(["plan", "--hosts", hostsFile(TWO_HOSTS), "--json", "-q"], cliIo), 1);
    const report = json();
    assert.deepEqual(report.errors, [
      { type: "ConnectionError", name: "web2", host: "dev@10.77.1.2:2222", step: "connect", message: "connection refused", fix: "start sshd", evidence: ["attempt 1: ECONNREFUSED"] },
    ]);
    assert.deepEqual(report.warnings, [{ name: "web1", message: "dev@10.77.0.2:22: WARNING: host-key verification is off" }]);
    assert.equal(report.hosts[1].error.step, "connect");
  });

  it("--json gives input and usage errors as documents too, each error at its place with the fix", async () => {
    const invalid = io();
    assert.equal(await runCli(["plan", "--json", "--hosts", hostsFile(`defaults: { netwrokDriver: pasta }\nhosts: [{ name: a, connection: { host: 10.0.0.1, user: dev, password: x } }]`)], invalid.cliIo), 1);
    const input = invalid.json();
    assert.deepEqual([input.schemaVersion, input.command, input.ok, input.exitCode], [1, "plan", false, 1]);
    assert.deepEqual(
      input.errors.map((error: { property: string; name: string | null; step: string; fix: string }) => [error.property, error.name, error.step, error.fix]),
      [
        ["hosts[0].connection.password", "a", "validate input", "use privateKeyPath, privateKeyEnv or an SSH agent; passwords do not belong in a hosts file"],
        ["defaults.netwrokDriver", null, "validate input", 'did you mean "networkDriver"?'],
      ],
    );
    const usage = io();
    assert.equal(await runCli(["plan", "--json", "--hots", "x.yaml"], usage.cliIo), 1);
    assert.deepEqual(usage.json(), {
      schemaVersion: 1,
      tool,
      command: "plan",
      ok: false,
      exitCode: 1,
      warnings: [],
      errors: [{ type: "UsageError", name: null, host: null, step: "usage", message: "unknown option --hots", fix: "did you mean --hosts? (see: rootless-docker-net help)", evidence: [] }],
    });
    const version = io();
    assert.equal(await runCli(["--version", "--json"], version.cliIo), 0);
    assert.deepEqual(version.json(), { schemaVersion: 1, tool });
  });

  it("exits 1 and touches no host when the hosts file is invalid", async () => {
    const { cliIo, err } = io();
    const code = await runCli(["apply", "--hosts", hostsFile(`hosts: [{ name: a, connection: { host: 10.0.0.1, password: x } }]`)], cliIo);
    assert.equal(code, 1);
    assert.match(err.join(""), /invalid input, nothing was done:\n {2}hosts\[0\]\.connection\.password \(a\): inline secrets are refused/);
  });

  it("answers a bad command line with one line and a hint, not the usage", async () => {
    const { cliIo, err, out } = io();
    assert.equal(await runCli(["plan"], cliIo), 1);
    assert.equal(err.join(""), "rootless-docker-net: say which hosts: --hosts FILE (or - for standard input) or --lab\n  see: rootless-docker-net help plan\n");
    assert.equal(out.join(""), "");
  });

  it("--version, help COMMAND and COMMAND --help", async () => {
    const version = io();
    assert.equal(await runCli(["--version"], version.cliIo), 0);
    assert.equal(version.out.join(""), `rootless-docker-net ${tool.version}\n`);
    const help = io();
    assert.equal(await runCli(["help", "apply"], help.cliIo), 0);
    assert.match(help.out.join(""), /^usage: rootless-docker-net apply/);
    assert.match(help.out.join(""), /--batch-size N/);
    const dashed = io();
    await runCli(["apply", "--help"], dashed.cliIo);
    assert.equal(dashed.out.join(""), help.out.join(""));
  });

  it("prints a progress line per host on stderr as it finishes, unless --quiet", async () => {
    const loud = io({ inspectHost: inspect });
    await runCli(["plan", "--hosts", hostsFile(TWO_HOSTS)], loud.cliIo);
    const lines = loud.err.join("").split("\n").filter(Boolean);
    assert.equal(lines.length, 2, lines.join("\n"));
    for (const line of lines) assert.match(line, /^\[\d+\.\ds\] web[12]: differs \([12]\/2\)$/);
    assert.deepEqual(lines.map((line) => line.split(" ")[1]).sort(), ["web1:", "web2:"]);
    const quiet = io({ inspectHost: inspect });
    await runCli(["plan", "--hosts", hostsFile(TWO_HOSTS), "--quiet"], quiet.cliIo);
    assert.equal(quiet.err.join(""), "");
  });

  it("--limit plans only the named hosts", async () => {
    const planned: string[] = [];
    const { cliIo, json } = io({ inspectHost: async (spec) => (planned.push(spec.connection.host), inspect(spec)) });
    await runCli(["plan", "--hosts", hostsFile(TWO_HOSTS), "--limit", "web2", "--json", "-q"], cliIo);
    assert.deepEqual(planned, ["10.77.1.2"]);
    assert.deepEqual(json().hosts.map((row: { name: string }) => row.name), ["web2"]);
  });

  it("validate refuses targets that prove nothing, each with its path and what to set, and a copied SET-ME as a placeholder", async () => {
    const { cliIo, out, err } = io();
    const file = hostsFile(TWO_HOSTS.replace('verify: { targets: [{ address: "fd99::1", tcpPort: 8081 }], timeoutSeconds: 20 }', 'verify: { targets: [{ address: "::1", tcpPort: 53 }, { address: "2001:db8::53", tcpPort: 53 }, { address: "SET-ME", tcpPort: 53 }, { address: "fd00::3", tcpPort: 53 }], timeoutSeconds: 20 }'));
    assert.equal(await runCli(["validate", "--hosts", file], cliIo), 1);
    const text = out.join("") + err.join("");
    assert.match(text, /defaults\.verify\.targets\[0\]\.address: ::1 is the loopback address[^\n]*: set verify\.targets\[0\]\.address to an IPv6 address of your own network/);
    assert.match(text, /defaults\.verify\.targets\[1\]\.address: 2001:db8::53 is in the documentation prefix/);
    assert.match(text, /defaults\.verify\.targets\[2\]\.address: is the placeholder "SET-ME" of a copied example/);
    assert.doesNotMatch(text, /must be an IPv6 address/);
    // fd00::3 is the namespace's DNS address: refused for each host, under its own driver (web1 pasta, web2 slirp4netns).
    assert.match(text, /fd00::3 is in fd00::\/64, the namespace's own prefix[^\n]*\(networkDriver "pasta"\)/);
    assert.match(text, /fd00::3 is in fd00::\/64, the namespace's own prefix[^\n]*\(networkDriver "slirp4netns"\)/);
  });

  it("validate checks the file and connects to nothing", async () => {
    const { cliIo, out } = io();
    assert.equal(await runCli(["validate", "--hosts", hostsFile(TWO_HOSTS)], cliIo), 0);
    assert.equal(out.join(""), "validate: 2 host(s) valid: web1 (dev@10.77.0.2:22), web2 (dev@10.77.1.2:2222)\n");
  });
});
