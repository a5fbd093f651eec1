/**
 * What each real dockerd-rootless.sh (tests/fixtures/scripts, from the Go module proxy) does with the variables, derived
 * from its text: the variables it reads, its defaults, the RootlessKit flags it builds; and the plan on a Docker 29.5+
 * host, whose script adds `--detach-netns` to FLAGS itself.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { parseFacts } from "../../provider/core/facts";
import { expectedCommandLine, hostScript } from "../../provider/core/in-effect";
import { observedInputs, planHost } from "../../provider/core/plan";
import { scriptInvocation, scriptModel, type ScriptHost } from "../../provider/core/rootless-script";
import { validateNetworkArgs } from "../../provider/core/schema";
import type { HostFacts, NetworkSpec } from "../../provider/core/types";
import { realScript } from "../helpers/facts-fixture";

const SCRIPTS = {
  "20.10.24": "dockerd-rootless-20.10.24.sh",
  "26.1.5": "dockerd-rootless-26.1.5-27.3.1.sh",
  "28.5.2": "dockerd-rootless-28.5.2.sh",
  "29.5+": "dockerd-rootless-moby-v2.0.0-beta.24.sh",
} as const;
const model = (docker: keyof typeof SCRIPTS) => scriptModel("/usr/bin/dockerd-rootless.sh", realScript(SCRIPTS[docker]));
const binaries = (...present: string[]): ScriptHost["binaries"] =>
  Object.fromEntries(["rootlesskit", "pasta", "slirp4netns", "vpnkit", "lxc-user-nic", "nsenter"].map((name) => [name, present.includes(name) ? `/usr/bin/${name}` : null])) as ScriptHost["binaries"];
const HOST: ScriptHost = { binaries: binaries("rootlesskit", "pasta", "slirp4netns", "nsenter"), versions: { rootlesskit: "3.0.2", pasta: "2026_10_02", slirp4netns: "1.3.3", dockerd: null }, xdgRuntimeDir: "/run/user/1000" };
const words = (docker: keyof typeof SCRIPTS, env: Record<string, string>, host: ScriptHost = HOST) => {
  const invocation = scriptInvocation(model(docker), (suffix) => env[suffix], host);
  return [...invocation.own, ...invocation.flags].join(" ");
};

describe("the variables each script reads, from its text", () => {
  const common = ["NET", "MTU", "PORT_DRIVER", "SLIRP4NETNS_SANDBOX", "SLIRP4NETNS_SECCOMP", "FLAGS"];
  test("Docker 20.10.24 reads neither STATE_DIR nor DISABLE_HOST_LOOPBACK nor DETACH_NETNS", () => assert.deepEqual([...model("20.10.24").reads].sort(), [...common].sort()));
  test("Docker 26.1.5 and 28.5.2 add STATE_DIR and DISABLE_HOST_LOOPBACK", () => {
    for (const docker of ["26.1.5", "28.5.2"] as const) assert.deepEqual([...model(docker).reads].sort(), [...common, "STATE_DIR", "DISABLE_HOST_LOOPBACK"].sort(), docker);
  });
  test("the 29.5+ script also reads DETACH_NETNS, default true, and rewrites FLAGS for it", () => {
    const m = model("29.5+");
    assert.ok(m.reads.has("DETACH_NETNS"));
    assert.equal(m.defaults.DETACH_NETNS, "true");
    assert.deepEqual(m.detachNetns, { rewrites: ["1", "true"], prefix: "--detach-netns", accepted: ["1", "true", "0", "false"] });
  });
});

describe("the RootlessKit flags each script builds", () => {
  const own = "--state-dir=/run/user/1000/dockerd-rootless";
  test("an explicit NET without MTU: 1500 up to 28.5.1 (moby#47765), 65520 from 28.5.2; the pasta port driver default from 28.5.2", () => {
    assert.equal(words("26.1.5", { NET: "pasta" }), `${own} --net=pasta --mtu=1500 --slirp4netns-sandbox=auto --slirp4netns-seccomp=auto --disable-host-loopback --port-driver=builtin --copy-up=/etc --copy-up=/run --propagation=rslave`);
    assert.equal(words("28.5.2", { NET: "pasta" }), `${own} --net=pasta --mtu=65520 --slirp4netns-sandbox=auto --slirp4netns-seccomp=auto --disable-host-loopback --port-driver=implicit --copy-up=/etc --copy-up=/run --propagation=rslave`);
    assert.equal(words("29.5+", { NET: "pasta" }), `${own} --net=pasta --mtu=65520 --slirp4netns-sandbox=auto --slirp4netns-seccomp=auto --disable-host-loopback --port-driver=implicit --copy-up=/etc --copy-up=/run --propagation=rslave --detach-netns`);
  });
  test("NET unset: auto-detection in the script's order, with the MTU it chooses on that path", () => {
    assert.match(words("20.10.24", {}), /--net=slirp4netns --mtu=65520/);
    assert.match(words("26.1.5", {}), /--net=slirp4netns --mtu=65520/);
    const noSlirp = { ...HOST, binaries: binaries("rootlesskit", "pasta") };
    assert.match(words("28.5.2", {}, noSlirp), /--net=pasta --mtu=65520 .*--port-driver=implicit/);
    assert.match(words("29.5+", {}, { ...HOST, binaries: binaries("rootlesskit") }), /--net=gvisor-tap-vsock --mtu=65520 .*--port-driver=builtin/);
    // 26.1.5 knows no pasta fallback: without slirp4netns or vpnkit the script exits, so nothing can be told.
    assert.ok(scriptInvocation(model("26.1.5"), () => undefined, noSlirp).unknown.has("net"));
  });
  test("DISABLE_HOST_LOOPBACK=false drops the flag where the script reads it; 20.10 always passes it", () => {
    assert.doesNotMatch(words("26.1.5", { NET: "slirp4netns", DISABLE_HOST_LOOPBACK: "false" }), /--disable-host-loopback/);
    assert.match(words("20.10.24", { NET: "slirp4netns", DISABLE_HOST_LOOPBACK: "false" }), /--disable-host-loopback/);
  });
  test("DETACH_NETNS on 29.5+: false adds nothing, true puts --detach-netns before FLAGS, anything else makes the script exit", () => {
    assert.doesNotMatch(words("29.5+", { NET: "pasta", DETACH_NETNS: "false", FLAGS: "--ipv6" }), /--detach-netns/);
    assert.match(words("29.5+", { NET: "pasta", DETACH_NETNS: "1", FLAGS: "--ipv6" }), /--propagation=rslave --detach-netns --ipv6$/);
    assert.match(scriptInvocation(model("29.5+"), (suffix) => ({ DETACH_NETNS: "yes" })[suffix], HOST).refused ?? "", /exits on DOCKERD_ROOTLESS_ROOTLESSKIT_DETACH_NETNS=yes/);
    assert.doesNotMatch(words("28.5.2", { NET: "pasta", DETACH_NETNS: "true" }), /--detach-netns/);
  });
});

describe("a Docker 29.5+ host (its script adds --detach-netns itself), from facts read on a lab host", () => {
  /** Read on a lab host running moby v2.0.0-beta.24's script and dockerd (tests/fixtures/facts/forky-moby-v2-detach-netns/source.md). */
  const FIXTURE = join(__dirname, "../../../tests/fixtures/facts/forky-moby-v2-detach-netns/stdout.txt");
  const facts: HostFacts = parseFacts(readFileSync(FIXTURE, "utf8"), { unit: "docker.service", dropInName: "override.conf" });
  test("the fixture is such a host: the script's own --detach-netns on the command line, FLAGS rewritten in RootlessKit's environment", () => {
    assert.equal(facts.execStart.script, realScript(SCRIPTS["29.5+"]));
    assert.match(facts.running.rootlesskitArgv!.join(" "), / --propagation=rslave --detach-netns --ipv6 /);
    assert.equal(facts.running.environment.DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS, "--detach-netns --ipv6");
  });
  const spec = (raw: Record<string, unknown>): NetworkSpec => {
    const validation = validateNetworkArgs({ ...(JSON.parse(readFileSync(join(__dirname, "../../../tests/fixtures/plan/no-op/spec.json"), "utf8")) as object), ...raw });
    assert.ok(validation.ok, JSON.stringify(validation));
    return validation.value;
  };

  test("in sync: no perpetual restart although the running FLAGS are --detach-netns --ipv6", () => {
    const plan = planHost(spec({}), facts);
    assert.deepEqual([plan.changes, plan.restart, plan.differs], [[], false, false], JSON.stringify(plan.changes));
  });
  test("read gives back the inputs: no extraFlags [\"--detach-netns\"] (which check refuses beside detachNetns)", () => {
    const read = observedInputs(spec({}), facts);
    assert.deepEqual([read.extraFlags, read.detachNetns, read.ipv6], [[], undefined, true]);
  });
  test("the outputs report --detach-netns in effect, and it is the script's own, not an extra flag", () => {
    const { line } = expectedCommandLine(facts, hostScript(facts), (suffix) => ({ NET: "pasta", MTU: "65520", PORT_DRIVER: "implicit", FLAGS: "--ipv6" })[suffix]);
    assert.deepEqual([line.network.detachNetns, line.network.extraFlags], [true, []]);
  });
  test("detachNetns false on it is a restart (the script reads it), and the plan says the next start has no --detach-netns", () => {
    const plan = planHost(spec({ detachNetns: false }), facts);
    const detach = plan.changes.find((change) => change.level === "running" && change.property === "DOCKERD_ROOTLESS_ROOTLESSKIT_DETACH_NETNS");
    assert.deepEqual([detach?.desired, detach?.actual, plan.restart, plan.problems.filter((problem) => problem.severity === "error")], ["false", "true", true, []]);
  });
  test("slirp4netns with ipv6 under a script that turns on IPv6 forwarding in the namespace is refused (no address from router advertisements)", () => {
    const errors = planHost(spec({ networkDriver: "slirp4netns", portDriver: "builtin" }), facts).problems.filter((problem) => problem.severity === "error");
    assert.equal(errors.length, 1, JSON.stringify(errors));
    assert.match(errors[0].message, /turns on IPv6 forwarding in the RootlessKit namespace itself \(nsenter -n"\$netns" sysctl -w net\.ipv6\.conf\.all\.forwarding=1 \|\| true\)/);
    const old = { ...facts, execStart: { ...facts.execStart, script: realScript(SCRIPTS["28.5.2"]) } };
    assert.equal(planHost(spec({ networkDriver: "slirp4netns", portDriver: "builtin" }), old).problems.some((problem) => /IPv6 forwarding/.test(problem.message)), false);
  });
  test("detachNetns true on Docker 26.1.5's script is a capability error naming the version and the alternative", () => {
    const old = { ...facts, execStart: { ...facts.execStart, script: realScript(SCRIPTS["26.1.5"]) }, versions: { ...facts.versions, dockerd: "26.1.5+dfsg1" } };
    const errors = planHost(spec({ detachNetns: true }), old).problems.filter((problem) => problem.severity === "error");
    assert.equal(errors.length, 1, JSON.stringify(errors));
    assert.match(errors[0].message, /^Docker 26\.1\.5\+dfsg1's dockerd-rootless\.sh \(\/usr\/share\/docker\.io\/contrib\/dockerd-rootless\.sh\) does not read DOCKERD_ROOTLESS_ROOTLESSKIT_DETACH_NETNS: detachNetns: true would not take effect/);
    assert.match(errors[0].hint, /extraFlags: \["--detach-netns"\]/);
    // detachNetns false is what that script runs anyway: no error.
    assert.deepEqual(planHost(spec({ detachNetns: false }), old).problems.filter((problem) => problem.severity === "error"), []);
  });
});
