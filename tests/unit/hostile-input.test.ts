/**
 * Hostile input (issue 4, point 3): every input that reaches a host, fed values meant to break out of a
 * shell word, a unit file line or the unit's folder, must end in a check failure that names the property.
 * The CLI path proves the other half: such a value never leads to an SSH connection.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { parseEnvironmentValue, quoteAssignment } from "../../provider/core/dropin";
import { desiredEnvironment, validateNetworkArgs } from "../../provider/core/schema";
import { shellQuote } from "../../provider/core/scripts";
import { runCli } from "../../provider/cli/main";
import * as engine from "../../provider/engine";
import { TRACE_ENV } from "../../provider/transport";

const FAKE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n";

/** Valid inputs: each case replaces one value of them. */
function validArgs(): Record<string, unknown> {
  return {
    connection: { host: "10.0.0.2", user: "dev", privateKey: FAKE_KEY, proxy: { host: "10.0.0.3", user: "jump", privateKey: FAKE_KEY } },
    networkDriver: "pasta",
    ipv6: true,
    extraFlags: ["--debug"],
    containerIpv6: { fixedCidrV6: "fd12:3456:789a:1::/64" },
    unit: "docker.service",
    dropInName: "override.conf",
    verify: { targets: [{ address: "fd99::1", tcpPort: 8081 }], image: "local/busybox" },
  };
}

/** `connection.proxy.host` → sets that value on a fresh copy of validArgs(). */
function argsWith(path: string, value: unknown): Record<string, unknown> {
  const args = validArgs();
  const keys = path.replace(/\[(\d+)\]/g, ".$1").split(".");
  let node = args as Record<string, unknown>;
  for (const key of keys.slice(0, -1)) node = node[key] as Record<string, unknown>;
  node[keys.at(-1)!] = value;
  return args;
}

// Breaking out of a shell word, a unit-file line, or a length limit; applied to every text input that reaches a host.
const SHELL = ["; id", "$(id)", "`id`", "| id", "& id", "> /tmp/pwned", "< /etc/shadow"];
const LINE_BREAKS = ["a\nExecStartPre=/bin/sh -c id", "a\rb", "a\0b"];
const HUGE = "a".repeat(100_000);
const GENERIC = [...SHELL.map((s) => `x${s}`), ...LINE_BREAKS, HUGE];

// Per property, the values that target what that property becomes on the host.
const CASES: Record<string, unknown[]> = {
  "connection.host": [...GENERIC, "-oProxyCommand=id", "ex\u0430mple.com" /* Cyrillic а */, "10.0.0.2 -p 2222", ""],
  "connection.user": [...GENERIC, "-oProxyCommand=id", "d\u0435v" /* Cyrillic е */, "root dev", "../dev"],
  "connection.proxy.host": [...GENERIC, "-oProxyCommand=id", "ex\u0430mple.com"],
  "connection.proxy.user": [...GENERIC, "d\u0435v"],
  "connection.port": [0, 65536, -22, 22.5, "22; id", "22"],
  "connection.password": ["pw\nsecond line", "pw\0", "x".repeat(100_000)],
  "connection.privateKeyPassword": ["pp\r\n", "pp\0", "x".repeat(100_000)],
  "connection.privateKey": ["/home/dev/.ssh/id_ed25519", `${FAKE_KEY}\0`, `-----BEGIN OPENSSH PRIVATE KEY-----\n${HUGE}\n-----END OPENSSH PRIVATE KEY-----\n`],
  "connection.hostKey": [
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA\nssh-rsa AAAAB3NzaC1yc2E",
    "ssh-ed25519 AAAA$(id)",
    "SHA256:short",
    "*",
    HUGE,
  ],
  "connection.agentSocketPath": [...LINE_BREAKS, HUGE],
  "connection.knownHostsPath": [...LINE_BREAKS, HUGE],
  "connection.dialErrorLimit": [1_000_000, -2, 1.5],
  "connection.perDialTimeout": [0, 100_000],
  "extraFlags[0]": [
    ...GENERIC,
    "--net=host",
    "--net=vpnkit",
    "--ipv6 --net=vpnkit",
    "--foo=$(id)",
    "--foo=`id`",
    "--foo=a;id",
    "--foo=a b",
    '--foo="x"',
    "--foo='x'",
    "--foo=a\\b",
    "--foo=%h", // systemd specifier expansion
    "--foo=$HOME",
    "--foo=a\nDOCKERD_ROOTLESS_ROOTLESSKIT_NET=host",
    "--foo\nEnvironment=LD_PRELOAD=/tmp/x.so",
    "\uff0d\uff0dnet=host", // fullwidth hyphens
    "\u2013net=host", // en dash
    "--n\u0435t=host", // Cyrillic е
    "--mtu=1",
    "--port-driver=slirp4netns",
    "--state-dir=/tmp",
    "--copy-up=/etc",
    "--slirp4netns-seccomp=false",
    "-p",
    "net=host",
    "",
  ],
  unit: [...GENERIC, "docker.service/../../x.service", "../docker.service", "/etc/systemd/system/docker.service", "docker", "d\u043ecker.service" /* Cyrillic о */, "docker.service "],
  dropInName: [
    ...GENERIC,
    "../override.conf",
    "../../.bashrc.conf",
    "..",
    "../",
    "/etc/systemd/user/x.conf",
    "a/b.conf",
    ".hidden.conf",
    "override",
    "override.conf/",
    "overrid\u0435.conf", // Cyrillic е
    "\u043everride.conf", // Cyrillic о
    "override.conf\nExecStartPre=/bin/sh",
    "override\u2215x.conf", // division slash
    "",
  ],
  "verify.image": [...GENERIC, "--privileged", "local/busybox --network=host", "-v /:/host", "LOCAL/BUSYBOX"],
  "verify.targets[0].address": [...GENERIC, "fd99::1; id", "[fd99::1]", "fd99::1%eth0; id", "10.0.0.1", "fd99::1 -c 1000000"],
  "verify.targets[0].tcpPort": [0, 70000, "8081; id"],
  "verify.timeoutSeconds": [0, 1_000_000],
  "containerIpv6.fixedCidrV6": [...GENERIC, "fd12:3456:789a:1::/64; id", "fd00::/64", "2001:db8::/64", "fd12::/48"],
  mtu: [0, 70_000, "1500; id", 1280.5],
  networkDriver: ["host", "pasta; id", "p\u0430sta"],
  portDriver: ["builtin; id", "implicit\n"],
  restart: ["always"],
};

for (const [property, values] of Object.entries(CASES)) {
  test(`hostile ${property}: every value ends in a check failure naming ${property}`, () => {
    for (const value of values) {
      const validation = validateNetworkArgs(argsWith(property, value));
      const shown = JSON.stringify(value).slice(0, 60);
      assert.equal(validation.ok, false, `${property} = ${shown} was accepted`);
      if (validation.ok) continue;
      const named = validation.problems.filter((problem) => problem.property === property);
      assert.ok(named.length > 0, `${property} = ${shown}: problems name ${validation.problems.map((p) => p.property).join(", ")}`);
      for (const problem of named) assert.ok(problem.reason.length > 0 && problem.reason.length < 400, `${property}: reason ${JSON.stringify(problem.reason).slice(0, 100)}…`);
    }
  });
}

test("the unhostile base inputs pass, so each failure above is the hostile value's", () => {
  const validation = validateNetworkArgs(validArgs());
  assert.ok(validation.ok, JSON.stringify(!validation.ok && validation.problems));
});

test("an unknown input (a typo, or a key meant to slip past the schema) is a check failure naming it", () => {
  for (const [key, where] of [["execStartPre", ""], ["command", "connection."], ["shell", "verify."]] as const) {
    const args = validArgs();
    const target = where === "" ? args : (args[where.slice(0, -1)] as Record<string, unknown>);
    target[key] = "/bin/sh -c id";
    const validation = validateNetworkArgs(args);
    assert.equal(validation.ok, false);
    assert.ok(!validation.ok && validation.problems.some((problem) => problem.property === `${where}${key}`), `${where}${key}`);
  }
});

test("several hostile values at once: every one is reported in the same check", () => {
  const args = argsWith("dropInName", "../x.conf");
  (args.extraFlags as string[]).push("--net=host");
  (args.connection as Record<string, unknown>).user = "dev; id";
  const validation = validateNetworkArgs(args);
  assert.equal(validation.ok, false);
  const properties = !validation.ok ? validation.problems.map((problem) => problem.property) : [];
  for (const property of ["dropInName", "extraFlags[1]", "connection.user"]) assert.ok(properties.includes(property), `${property} in ${properties.join(", ")}`);
});

// The accepted characters still reach a shell and a unit file: the quoting must carry them through unchanged.
const ODD_BUT_VALID_FLAGS = ["--foo=a,b:c/d@e+f", "--cidr=10.0.2.0/24", "--foo=x_y.z-w"];

test("accepted extraFlags reach the drop-in as one FLAGS variable and nothing else", () => {
  const validation = validateNetworkArgs({ ...validArgs(), extraFlags: ODD_BUT_VALID_FLAGS });
  assert.ok(validation.ok);
  const env = desiredEnvironment(validation.value);
  const flags = env.DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS;
  const parsed = parseEnvironmentValue(quoteAssignment("DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS", flags));
  assert.deepEqual(parsed.assignments, [["DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS", `--ipv6 ${ODD_BUT_VALID_FLAGS.join(" ")}`]]);
});

test("quoteAssignment keeps a value with quotes, newlines, % and backslashes one assignment (defence behind the schema)", () => {
  const value = 'a"b\nEnvironment=X=1 %h \\ $(id) `id`\' c';
  assert.deepEqual(parseEnvironmentValue(quoteAssignment("DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS", value)).assignments, [["DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS", value]]);
});

test("shellQuote: /bin/sh reads every hostile value back as one word, running nothing", () => {
  const marker = join(mkdtempSync(join(tmpdir(), "hostile-")), "ran");
  for (const value of [...SHELL, ...LINE_BREAKS.filter((v) => !v.includes("\0")), `'; touch ${marker}; '`, `$(touch ${marker})`, `\`touch ${marker}\``, "a'b\"c\\d"]) {
    const result = spawnSync("/bin/sh", ["-c", `printf %s ${shellQuote(value)}`], { encoding: "utf8" });
    assert.equal(result.stdout, value);
  }
  assert.throws(() => readFileSync(marker), /ENOENT/, "a quoted value ran a command");
});

test("CLI plan with hostile values in the hosts file: a check failure naming each, and no SSH connection at all", async () => {
  const dir = mkdtempSync(join(tmpdir(), "hostile-cli-"));
  const keyFile = join(dir, "id");
  writeFileSync(keyFile, FAKE_KEY, { mode: 0o600 });
  const hostsFile = join(dir, "hosts.yaml");
  writeFileSync(
    hostsFile,
    JSON.stringify({
      defaults: { networkDriver: "pasta", ipv6: true, verify: { targets: [{ address: "fd99::1" }] } },
      hosts: [
        { name: "a", connection: { host: "127.0.0.1", port: 1, user: "dev", privateKeyPath: keyFile }, dropInName: "../../.bashrc.conf" },
        { name: "b", connection: { host: "127.0.0.1", port: 1, user: "dev", privateKeyPath: keyFile }, extraFlags: ["--foo=$(id)", "--net=host"] },
        { name: "c", connection: { host: "127.0.0.1; id", port: 1, user: "dev", privateKeyPath: keyFile }, unit: "docker.service/../x.service" },
      ],
    }),
  );
  const trace = join(dir, "trace.jsonl");
  writeFileSync(trace, "");
  const previous = process.env[TRACE_ENV];
  process.env[TRACE_ENV] = trace;
  let stdout = "";
  let stderr = "";
  let engineCalls = 0;
  const countingEngine = new Proxy(engine, {
    get: (target, name) => {
      const real = target[name as keyof typeof engine];
      return typeof real === "function" ? (...args: unknown[]) => ((engineCalls += 1), (real as (...a: unknown[]) => unknown)(...args)) : real;
    },
  });
  try {
    const code = await runCli(["plan", "--hosts", hostsFile], {
      stdout: (text) => (stdout += text),
      stderr: (text) => (stderr += text),
      interactive: false,
      engine: countingEngine,
    });
    assert.equal(code, 1);
  } finally {
    if (previous === undefined) delete process.env[TRACE_ENV];
    else process.env[TRACE_ENV] = previous;
  }
  const output = stdout + stderr;
  for (const property of ["hosts[0].dropInName", "hosts[1].extraFlags[0]", "hosts[1].extraFlags[1]", "hosts[2].connection.host", "hosts[2].unit"]) {
    assert.ok(output.includes(property), `${property} not named in:\n${output}`);
  }
  assert.equal(engineCalls, 0, "the engine was called");
  assert.equal(readFileSync(trace, "utf8"), "", "an SSH connection was traced");
});
