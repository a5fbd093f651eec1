import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { networkInterfaces, tmpdir, userInfo } from "node:os";
import { join, resolve } from "node:path";
import { test } from "node:test";
import { canonicalIpv6 } from "../../provider/core/address";
import { factsScript, parseFacts, parseSystemctlEnvironment, splitSystemctlWords, versionFromOutput } from "../../provider/core/facts";

const PARAMS = { unit: "docker.service", dropInName: "50-pulumi-rootless-docker.conf" };
const FIXTURES = resolve(__dirname, "../../../tests/fixtures/facts");

/** Every key of `expected` must equal the same key of `actual` (recursively for plain objects). */
function assertSubset(actual: unknown, expected: unknown, path = "facts"): void {
  if (expected !== null && typeof expected === "object" && !Array.isArray(expected)) {
    assert.ok(actual !== null && typeof actual === "object", `${path} should be an object`);
    for (const [key, value] of Object.entries(expected)) assertSubset((actual as Record<string, unknown>)[key], value, `${path}.${key}`);
    return;
  }
  assert.deepEqual(actual, expected, path);
}

// Real outputs captured from a Debian 13 lab host (systemd 257, rootlesskit 2.0.2).
for (const name of readdirSync(FIXTURES)) {
  test(`facts fixture ${name}`, () => {
    const stdout = readFileSync(join(FIXTURES, name, "stdout.txt"), "utf8");
    const expected = JSON.parse(readFileSync(join(FIXTURES, name, "expected.json"), "utf8"));
    assertSubset(parseFacts(stdout, PARAMS), expected);
  });
}

// ------------------------------------------------------------------------------------------------
// Synthetic outputs for hosts the lab does not have, built from data the way the script prints it.

const b64 = (text: string) => Buffer.from(text, "utf8").toString("base64");
const nul = (argv: string[]) => argv.map((arg) => `${arg}\0`).join("");

interface FakeHost {
  usermanager?: boolean;
  show?: string;
  dropin?: string;
  mainpid?: number;
  maincmdline?: string[];
  mainenv?: Record<string, string>;
  childpid?: number;
  procs?: { pid: number; ppid: number; comm: string; argv: string[] }[];
  versions?: Record<string, string>;
  bins?: Record<string, string>;
}

function factsOutput(host: FakeHost): string {
  const lines = ["RDN begin 1", `RDN user ${b64("dev")}`, `RDN uid ${b64("1000")}`, `RDN home ${b64("/home/dev")}`, `RDN xdg ${b64("/run/user/1000")}`];
  lines.push(`RDN usermanager ${host.usermanager === false ? "no" : "yes"}`, "RDN linger yes", `RDN pinggrouprange ${b64("1\t0\n")}`);
  lines.push(`RDN show ${b64(host.show ?? "")}`, `RDN dropinpath ${b64("/home/dev/.config/systemd/user/docker.service.d/50-pulumi-rootless-docker.conf")}`);
  lines.push(`RDN dropin ${host.dropin === undefined ? "-" : b64(host.dropin)}`, `RDN mainpid ${host.mainpid ?? "-"}`);
  if (host.maincmdline) lines.push(`RDN maincmdline ${b64(nul(host.maincmdline))}`);
  if (host.mainenv) lines.push(`RDN mainenv ${b64(nul(Object.entries(host.mainenv).map(([key, value]) => `${key}=${value}`)))}`);
  if (host.mainpid !== undefined) lines.push(`RDN childpid ${host.childpid ?? "-"}`);
  for (const proc of host.procs ?? []) lines.push(`RDN proc ${proc.pid} ${proc.ppid} ${b64(proc.comm)} ${b64(nul(proc.argv))}`);
  for (const [name, output] of Object.entries(host.versions ?? {})) lines.push(`RDN version.${name} ${b64(output)}`);
  for (const [name, path] of Object.entries(host.bins ?? {})) lines.push(`RDN bin.${name} ${b64(path)}`);
  lines.push("RDN end");
  return lines.join("\n") + "\n";
}

const show = (properties: Record<string, string>) =>
  Object.entries(properties)
    .map(([key, value]) => `${key}=${value}`)
    .join("\n");

test("facts: Debian 12 (rootlesskit 1.1.0, slirp4netns, no pasta, Docker 20.10)", () => {
  const argv = ["rootlesskit", "--net=slirp4netns", "--mtu=65520", "--slirp4netns-sandbox=auto", "--slirp4netns-seccomp=auto", "--disable-host-loopback", "--port-driver=builtin", "--copy-up=/etc", "--copy-up=/run", "--propagation=rslave", "/usr/share/docker.io/contrib/dockerd-rootless.sh"];
  const facts = parseFacts(
    factsOutput({
      show: show({ LoadState: "loaded", MainPID: "812", ExecMainPID: "812", ActiveState: "active", SubState: "running", NeedDaemonReload: "no", Environment: "PATH=/usr/bin:/sbin:/bin" }),
      mainpid: 812,
      maincmdline: argv,
      childpid: 830,
      procs: [
        { pid: 812, ppid: 1, comm: "rootlesskit", argv },
        { pid: 831, ppid: 812, comm: "slirp4netns", argv: ["slirp4netns", "--mtu", "65520", "-r", "3", "--disable-host-loopback", "--enable-sandbox", "--enable-seccomp", "830", "tap0"] },
      ],
      versions: { rootlesskit: "rootlesskit version 1.1.0", slirp4netns: "slirp4netns version 1.2.0", dockerd: "Docker version 20.10.24+dfsg1, build 297e128", pasta: "" },
      bins: { rootlesskit: "/usr/bin/rootlesskit", slirp4netns: "/usr/bin/slirp4netns", pasta: "" },
    }),
    PARAMS,
  );
  assert.equal(facts.versions.rootlesskit, "1.1.0");
  assert.equal(facts.versions.dockerd, "20.10.24+dfsg1");
  assert.equal(facts.versions.pasta, null);
  assert.equal(facts.binaries.pasta, null);
  assert.deepEqual(facts.running.rootlesskitArgv, argv);
  assert.equal(facts.running.slirp4netnsArgv?.[8], "830");
  assert.equal(facts.running.childPid, 830);
  assert.deepEqual(facts.pingGroupRange, [1, 0]);
});

test("facts: RootlessKit 3.x command line, detached netns, helper found under a wrapper main PID", () => {
  const argv = ["/usr/local/bin/rootlesskit", "--state-dir=/run/user/1000/dockerd-rootless", "--net=gvisor-tap-vsock", "--mtu=65520", "--disable-host-loopback", "--port-driver=builtin", "--copy-up=/etc", "--copy-up=/run", "--propagation=rslave", "--detach-netns", "--ipv6", "/usr/local/bin/dockerd-rootless.sh"];
  const facts = parseFacts(
    factsOutput({
      show: show({ LoadState: "loaded", MainPID: "400", ActiveState: "active" }),
      mainpid: 400,
      maincmdline: ["/bin/sh", "/usr/local/bin/wrapper.sh"],
      mainenv: { DOCKERD_ROOTLESS_ROOTLESSKIT_NET: "gvisor-tap-vsock", DOCKERD_ROOTLESS_ROOTLESSKIT_DETACH_NETNS: "true", DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS: "--ipv6\nsecond line" },
      childpid: 433,
      procs: [
        { pid: 401, ppid: 400, comm: "rootlesskit", argv },
        { pid: 500, ppid: 1, comm: "slirp4netns", argv: ["slirp4netns", "someone-elses"] },
      ],
      versions: { rootlesskit: "rootlesskit version 3.0.0", dockerd: "Docker version 29.5.0, build abcdef0" },
    }),
    PARAMS,
  );
  assert.deepEqual(facts.running.rootlesskitArgv, argv);
  assert.equal(facts.running.environment.DOCKERD_ROOTLESS_ROOTLESSKIT_DETACH_NETNS, "true");
  assert.equal(facts.running.environment.DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS, "--ipv6\nsecond line");
  // A slirp4netns that is not a child of this RootlessKit belongs to someone else (podman, another daemon).
  assert.equal(facts.running.slirp4netnsArgv, null);
  assert.equal(facts.versions.rootlesskit, "3.0.0");
  assert.equal(facts.versions.dockerd, "29.5.0");
});

test("facts: no user manager answers", () => {
  const facts = parseFacts(factsOutput({ usermanager: false }), PARAMS);
  assert.equal(facts.userManager, false);
  assert.equal(facts.unit.loaded, false);
  assert.equal(facts.unit.activeState, "");
  assert.deepEqual(facts.unit.environment, {});
  assert.equal(facts.running.rootlesskitArgv, null);
  assert.equal(facts.running.childPid, null);
  assert.deepEqual(facts.unitFiles, []);
});

test("facts: unit not loaded (docker.service was never set up)", () => {
  const facts = parseFacts(
    factsOutput({ show: show({ LoadState: "not-found", MainPID: "0", ExecMainPID: "0", ActiveState: "inactive", SubState: "dead", Environment: "", DropInPaths: "", NeedDaemonReload: "no" }) }),
    PARAMS,
  );
  assert.equal(facts.userManager, true);
  assert.equal(facts.unit.loaded, false);
  assert.equal(facts.unit.activeState, "inactive");
  assert.deepEqual(facts.unit.dropInPaths, []);
  assert.equal(facts.running.rootlesskitArgv, null);
  assert.equal(facts.dropIn.content, null);
});

test("facts: NeedDaemonReload and an ExecMainPID of a process that has exited", () => {
  const facts = parseFacts(factsOutput({ show: show({ LoadState: "loaded", MainPID: "0", ExecMainPID: "777", ActiveState: "failed", NeedDaemonReload: "yes" }) }), PARAMS);
  assert.equal(facts.unit.needDaemonReload, true);
  assert.equal(facts.unit.execMainPID, 777);
  assert.equal(facts.running.rootlesskitArgv, null);
});

test("facts: output that is cut off or not ours is refused, not guessed", () => {
  const full = factsOutput({});
  assert.throws(() => parseFacts(full.replace("RDN end\n", ""), PARAMS), /incomplete/);
  assert.throws(() => parseFacts("", PARAMS), /incomplete/);
});

// ------------------------------------------------------------------------------------------------
// systemctl's quoting (systemd 257.13, captured on the lab host; 252 prints the same: shell_maybe_quote).

test("parseSystemctlEnvironment: exact systemd 257 output with spaces, quotes, $, backslashes, tabs, UTF-8", () => {
  const printed = String.raw`PATH=/usr/share/docker.io/contrib:/usr/sbin:/usr/bin:/sbin:/bin "A=has space" "B=quote\"d" "C=dollar\$\$x" "D=back\\\\slash" "E=tab\there" "F=star*q?" "G=it's" H=ümlaut I=plain`;
  assert.deepEqual(parseSystemctlEnvironment(printed), {
    PATH: "/usr/share/docker.io/contrib:/usr/sbin:/usr/bin:/sbin:/bin",
    A: "has space",
    B: 'quote"d',
    C: "dollar$$x",
    D: "back\\\\slash",
    E: "tab\there",
    F: "star*q?",
    G: "it's",
    H: "ümlaut",
    I: "plain",
  });
});

test("parseSystemctlEnvironment: octal escapes of invalid UTF-8, later assignments win, empty value", () => {
  assert.deepEqual(parseSystemctlEnvironment(String.raw`"X=a\303\274b" X2= "Y=line\nbreak" Y=1 Y=2`), { X: "aüb", X2: "", Y: "2" });
  assert.deepEqual(parseSystemctlEnvironment(""), {});
});

test("splitSystemctlWords: DropInPaths with a quoted path", () => {
  assert.deepEqual(splitSystemctlWords(String.raw`/a/10.conf "/a/zz my \$(x).conf" /a/b.conf`), ["/a/10.conf", "/a/zz my $(x).conf", "/a/b.conf"]);
});

test("versionFromOutput: the version word of each tool", () => {
  assert.equal(versionFromOutput("rootlesskit version 2.0.2"), "2.0.2");
  assert.equal(versionFromOutput("pasta 0^20250503.g587980c-1\nCopyright Red Hat"), "0^20250503.g587980c-1");
  assert.equal(versionFromOutput("slirp4netns version 1.2.1\ncommit: 09e31e9"), "1.2.1");
  assert.equal(versionFromOutput("Docker version 26.1.5+dfsg1, build a72d7cd"), "26.1.5+dfsg1");
  assert.equal(versionFromOutput(""), null);
});

// ------------------------------------------------------------------------------------------------
// The script itself.

test("factsScript passes dash's syntax check and quotes hostile unit names", () => {
  const script = factsScript({ unit: "docker'; touch /tmp/pwned; '.service", dropInName: "x$(id).conf" });
  const check = spawnSync("dash", ["-n"], { input: script, encoding: "utf8" });
  assert.equal(check.status, 0, check.stderr);
  assert.ok(script.includes(`unit='docker'\\''; touch /tmp/pwned; '\\''.service'`));
});

test("the verification image is asked for only when it will be used, and read as present, missing or unknown", () => {
  assert.ok(factsScript(PARAMS).includes("probe_image=''"));
  const script = factsScript({ ...PARAMS, probeImage: "busybox'$(id)" });
  assert.equal(spawnSync("dash", ["-n"], { input: script, encoding: "utf8" }).status, 0);
  assert.ok(script.includes(`probe_image='busybox'\\''$(id)'`));
  const read = (answer?: string) => parseFacts(factsOutput({}).replace("RDN end", answer === undefined ? "RDN end" : `RDN probeimage ${b64(answer)}\nRDN end`), { ...PARAMS, probeImage: "busybox" }).probeImage;
  assert.deepEqual([read("yes"), read("no"), read("unknown"), read()], [
    { image: "busybox", present: true },
    { image: "busybox", present: false },
    { image: "busybox", present: null },
    { image: "busybox", present: null },
  ]);
  assert.equal("probeImage" in parseFacts(factsOutput({}), PARAMS), false);
});

test("factsScript runs for real on this machine and parses (no crash without a user manager)", () => {
  const run = spawnSync("sh", ["-c", factsScript(PARAMS)], { encoding: "utf8", env: { ...process.env, XDG_RUNTIME_DIR: "" } });
  assert.equal(run.status, 0, run.stderr);
  const facts = parseFacts(run.stdout, PARAMS);
  assert.equal(facts.user, userInfo().username);
  assert.equal(facts.uid, userInfo().uid);
  assert.equal(facts.xdgRuntimeDir, `/run/user/${userInfo().uid}`);
  if (!existsSync("/run/systemd/system")) {
    // PID 1 is not systemd here: no user manager, so nothing about the unit can be known.
    assert.equal(facts.userManager, false);
    assert.equal(facts.unit.loaded, false);
    assert.equal(facts.running.rootlesskitArgv, null);
  }
});

/** Runs the facts script with sh on this machine, with `env` over the test's own environment. */
function runFactsScript(env: Record<string, string>): ReturnType<typeof parseFacts> {
  const run = spawnSync("sh", ["-c", factsScript(PARAMS)], { encoding: "utf8", env: { ...process.env, ...env } });
  assert.equal(run.status, 0, run.stderr);
  return parseFacts(run.stdout, PARAMS);
}

test("factsScript: text values survive the awk base64 byte for byte (UTF-8, quotes, newline, every padding)", () => {
  for (const home of ["/tmp/a", "/tmp/ab", "/tmp/abc", "/tmp/ü 'q' \"d\" $x `c` \\ *", "/tmp/line\nbreak\ttab€"]) {
    const facts = runFactsScript({ HOME: home, XDG_RUNTIME_DIR: "" });
    assert.equal(facts.home, home);
    assert.equal(facts.dropIn.path, `${home}/.config/systemd/user/docker.service.d/50-pulumi-rootless-docker.conf`);
  }
});

test("factsScript: --version output is cached in the runtime dir and read afresh when the binary changes", (t) => {
  const scratch = mkdtempSync(join(tmpdir(), "rdn-facts-cache-"));
  t.after(() => rmSync(scratch, { recursive: true, force: true }));
  const runs = join(scratch, "runs");
  const dockerd = join(scratch, "dockerd");
  // Same length for both versions: the rewrite keeps inode and size, only the timestamps tell it apart.
  const fakeDockerd = (version: string) => `#!/bin/sh\necho run >> '${runs}'\necho 'Docker version ${version}, build 0000000'\n`;
  const runCount = () => (existsSync(runs) ? readFileSync(runs, "utf8").split("\n").filter(Boolean).length : 0);
  const env = { PATH: `${scratch}:${process.env.PATH ?? "/usr/bin:/bin"}`, XDG_RUNTIME_DIR: scratch };
  writeFileSync(dockerd, fakeDockerd("1.0.0"));
  chmodSync(dockerd, 0o755);

  assert.equal(runFactsScript(env).versions.dockerd, "1.0.0");
  assert.equal(runCount(), 1);
  assert.ok(existsSync(join(scratch, "pulumi-rootless-docker", "versions")), "the versions were cached");
  assert.equal(runFactsScript(env).versions.dockerd, "1.0.0");
  assert.equal(runCount(), 1, "an unchanged binary is not run again");

  writeFileSync(dockerd, fakeDockerd("2.0.0"));
  assert.equal(runFactsScript(env).versions.dockerd, "2.0.0");
  assert.equal(runCount(), 2);

  rmSync(dockerd);
  const facts = runFactsScript(env);
  assert.notEqual(facts.versions.dockerd, "2.0.0", "a removed binary has no cached version");
});

test("factsScript: nothing is cached without a runtime dir of the user's own", (t) => {
  const scratch = mkdtempSync(join(tmpdir(), "rdn-facts-nocache-"));
  t.after(() => rmSync(scratch, { recursive: true, force: true }));
  const missing = join(scratch, "not-there");
  runFactsScript({ XDG_RUNTIME_DIR: missing });
  assert.equal(existsSync(missing), false);
});

test("facts fixture trixie-several-dropins: an EnvironmentFile's other lines (SECRET=hunter2 on that host) never leave it", () => {
  const stdout = readFileSync(join(FIXTURES, "trixie-several-dropins", "stdout.txt"), "utf8");
  const decoded = stdout.split("\n").flatMap((line) => line.split(" ").slice(2).map((field) => Buffer.from(field, "base64").toString("utf8")));
  assert.ok(decoded.some((text) => text.includes("DOCKERD_ROOTLESS_ROOTLESSKIT_SLIRP4NETNS_SANDBOX=true")));
  assert.ok(!decoded.some((text) => text.includes("hunter2")));
});

test("host IPv6: /proc/net's hex addresses in RFC 5952 form, duplicates once; absent in older output = empty", () => {
  const output = factsOutput({}).replace("RDN end", [`RDN hostaddresses ${b64("fd770000000000090000000000000011 20010db8000000000000000000000001 fd770000000000090000000000000011")}`, `RDN hostgateways ${b64("fd770000000000090000000000000001")}`, "RDN end"].join("\n"));
  assert.deepEqual(parseFacts(output, PARAMS).hostIpv6, { addresses: ["fd77:0:0:9::11", "2001:db8::1"], defaultGateways: ["fd77:0:0:9::1"] });
  assert.deepEqual(parseFacts(factsOutput({}), PARAMS).hostIpv6, { addresses: [], defaultGateways: [] });
});

test("host IPv6 read for real here: the global addresses node sees, and the gateways of `ip -6 route show default`", () => {
  const run = spawnSync("sh", ["-c", factsScript(PARAMS)], { encoding: "utf8" });
  assert.equal(run.status, 0, run.stderr);
  const facts = parseFacts(run.stdout, PARAMS);
  const globalAddresses = Object.values(networkInterfaces())
    .flat()
    .filter((entry) => entry !== undefined && entry.family === "IPv6" && !entry.internal && !entry.address.toLowerCase().startsWith("fe80:"))
    .map((entry) => canonicalIpv6(entry!.address));
  assert.deepEqual([...facts.hostIpv6.addresses].sort(), [...new Set(globalAddresses)].sort());
  const routes = spawnSync("ip", ["-6", "route", "show", "default"], { encoding: "utf8" });
  if (routes.error) return; // no iproute2 here: the addresses were still compared
  const gateways = [...routes.stdout.matchAll(/\bvia ([0-9a-f:]+)/g)].map((match) => canonicalIpv6(match[1]));
  assert.deepEqual([...facts.hostIpv6.defaultGateways].sort(), [...new Set(gateways)].sort());
});
