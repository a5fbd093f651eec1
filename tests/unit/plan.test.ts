import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { managedAssignments } from "../../provider/core/dropin";
import { compareVersions, derivedContainerPrefix, observedInputs, planHost, planRemoval } from "../../provider/core/plan";
import { validateNetworkArgs } from "../../provider/core/schema";
import { compatHelperScript } from "../../provider/core/scripts";
import type { HostFacts, HostPlan, NetworkSpec } from "../../provider/core/types";
import { readFactsFixture } from "../helpers/facts-fixture";

/** tests/fixtures/plan/<case>/{spec.json (raw inputs), facts.json (HostFacts), expected.json (HostPlan)} */
const FIXTURES = join(__dirname, "../../../tests/fixtures/plan");
/** The helper's text belongs to scripts.ts; the fixtures name it instead of copying it. */
const COMPAT_HELPER = "<compatHelperScript()>";

const readJson = <T>(dir: string, name: string): T => JSON.parse(readFileSync(join(FIXTURES, dir, name), "utf8")) as T;

function specOf(raw: unknown): NetworkSpec {
  const validation = validateNetworkArgs(raw);
  assert.ok(validation.ok, `spec.json is valid: ${JSON.stringify(validation.ok ? [] : validation.problems)}`);
  return validation.value;
}

function normalizedPlan(plan: HostPlan): HostPlan {
  return { ...plan, writes: plan.writes.map((write) => ({ ...write, content: write.content === compatHelperScript() ? COMPAT_HELPER : write.content })) };
}

describe("planHost fixtures", () => {
  for (const name of readdirSync(FIXTURES).sort()) {
    test(name, () => {
      const plan = planHost(specOf(readJson(name, "spec.json")), readFactsFixture(join(FIXTURES, name, "facts.json")));
      assert.deepEqual(normalizedPlan(plan), readJson<HostPlan>(name, "expected.json"));
      // Pulumi's Struct encoding rejects undefined anywhere: the plan must survive a JSON round trip unchanged.
      assert.deepEqual(JSON.parse(JSON.stringify(plan)), plan);
    });
  }
});

describe("planHost properties", () => {
  const fixture = (name: string) => ({ spec: specOf(readJson(name, "spec.json")), facts: readFactsFixture(join(FIXTURES, name, "facts.json")) });

  test("the drop-in a plan writes holds exactly the desired settings, and planning on it again writes nothing", () => {
    const { spec, facts } = fixture("fresh-host-pasta-ipv6");
    const written = planHost(spec, facts).writes[0];
    assert.equal(written.path, facts.dropIn.path);
    assert.deepEqual(managedAssignments(written.content), {
      DOCKERD_ROOTLESS_ROOTLESSKIT_NET: "pasta",
      DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER: "implicit",
      DOCKERD_ROOTLESS_ROOTLESSKIT_MTU: "65520",
      DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS: "--ipv6",
    });
    assert.deepEqual(planHost(spec, { ...facts, dropIn: { ...facts.dropIn, content: written.content } }).writes, []);
  });

  test("a value the script chose itself and the command line shows (Docker 28.5.2: MTU 65520, implicit) needs no restart", () => {
    const { spec, facts } = fixture("no-op");
    const environment = { DOCKERD_ROOTLESS_ROOTLESSKIT_NET: "pasta", DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS: "--ipv6" };
    const plan = planHost(spec, { ...facts, running: { ...facts.running, environment } });
    assert.equal(plan.restart, false);
    assert.deepEqual(plan.changes.filter((change) => change.level === "running"), []);
    // What the command line does not show is still a pending restart.
    const otherMtu = { ...facts.running, environment, rootlesskitArgv: (facts.running.rootlesskitArgv ?? []).map((arg: string) => (arg === "--mtu=65520" ? "--mtu=1500" : arg)) };
    assert.deepEqual(planHost(spec, { ...facts, running: otherMtu }).changes.filter((change) => change.level === "running").map((change) => change.property), ["DOCKERD_ROOTLESS_ROOTLESSKIT_MTU"]);
  });

  test("a missing driver binary is an error naming the binary", () => {
    const { spec, facts } = fixture("no-op");
    const plan = planHost(spec, { ...facts, binaries: { ...facts.binaries, pasta: null } });
    assert.deepEqual(plan.problems.map((problem) => problem.severity), ["error"]);
    assert.match(plan.problems[0].message, /pasta binary/);
  });

  test("logging in as root is an error that says which user to set", () => {
    const { spec, facts } = fixture("no-op");
    const [problem] = planHost(spec, { ...facts, user: "root", uid: 0 }).problems;
    assert.deepEqual([problem.severity, problem.message, problem.hint], ["error", "connected as root (root): rootless Docker runs as a non-root user", "set connection.user to the user that runs rootless Docker"]);
  });

  test("a verification image that is not on the host is an error before any change, naming the image and how to provide it", () => {
    const { spec, facts } = fixture("no-op");
    const missing = planHost(spec, { ...facts, probeImage: { image: "busybox", present: false } });
    assert.deepEqual(missing.problems.map((problem) => problem.severity), ["error"]);
    assert.match(missing.problems[0].message, /verify\.image "busybox" is not on the host/);
    assert.match(missing.problems[0].hint, /docker pull busybox/);
    // Unknown (no daemon to ask) is not judged; present is fine.
    assert.deepEqual(planHost(spec, { ...facts, probeImage: { image: "busybox", present: null } }).problems, planHost(spec, facts).problems);
  });

  test("no user manager and an unloaded unit are errors", () => {
    const { spec, facts } = fixture("no-op");
    assert.match(planHost(spec, { ...facts, userManager: false }).problems[0].message, /no systemd user manager/);
    assert.match(planHost(spec, { ...facts, unit: { ...facts.unit, loaded: false } }).problems[0].message, /docker.service is not loaded/);
  });

  test("the derived container prefix is stable per host, a ULA /64 outside fd00::/64", () => {
    const prefix = derivedContainerPrefix("10.77.0.2");
    assert.equal(prefix, derivedContainerPrefix("10.77.0.2"));
    assert.notEqual(prefix, derivedContainerPrefix("10.77.0.3"));
    assert.match(prefix, /^fd[0-9a-f]{2}:[0-9a-f]{1,4}:[0-9a-f]{1,4}:[0-9a-f]{1,4}::\/64$/);
    assert.ok(validateNetworkArgs({ ...readJson<object>("no-op", "spec.json"), containerIpv6: { fixedCidrV6: prefix } }).ok);
  });
});

describe("planRemoval", () => {
  test("drops our settings, removes the file and the helper, restarts a daemon that runs with them", () => {
    const spec = specOf(readJson("no-op", "spec.json"));
    const facts = readFactsFixture(join(FIXTURES, "no-op", "facts.json"));
    const plan = planRemoval(spec, { ...facts, compatScript: { ...facts.compatScript, content: "#!/bin/sh\n" } });
    assert.deepEqual(plan.writes, [
      { path: facts.dropIn.path, content: null, mode: 0o644 },
      { path: facts.compatScript.path, content: null, mode: 0o755 },
    ]);
    assert.deepEqual([plan.daemonReload, plan.restart, plan.differs], [true, true, true]);
  });

  test("keeps what is not ours and does not restart a daemon that never had our settings", () => {
    const spec = specOf(readJson("no-op", "spec.json"));
    const facts = readFactsFixture(join(FIXTURES, "fresh-host-pasta-ipv6", "facts.json"));
    const content = '[Service]\nEnvironment="DOCKERD_ROOTLESS_ROOTLESSKIT_NET=pasta" KEEP=1\n';
    const plan = planRemoval(spec, { ...facts, dropIn: { ...facts.dropIn, content } });
    assert.deepEqual(plan.writes, [{ path: facts.dropIn.path, content: "[Service]\nEnvironment=KEEP=1\n", mode: 0o644 }]);
    assert.equal(plan.restart, false);
  });

  test("nothing to remove is a no-op", () => {
    const plan = planRemoval(specOf(readJson("no-op", "spec.json")), readFactsFixture(join(FIXTURES, "fresh-host-pasta-ipv6", "facts.json")));
    assert.deepEqual([plan.writes, plan.restart, plan.daemonReload, plan.differs], [[], false, false, false]);
  });
});

test("containerIpv6 with slirp4netns + IPv6 is refused: dockerd's forwarding would cost the namespace its default route", () => {
  const raw = { ...readJson<Record<string, unknown>>("no-op", "spec.json"), networkDriver: "slirp4netns", portDriver: "builtin", ipv6: true, containerIpv6: true };
  const plan = planHost(specOf(raw), readFactsFixture(join(FIXTURES, "no-op", "facts.json")));
  assert.ok(plan.problems.some((problem) => problem.severity === "error" && /router advertisements/.test(problem.message)), JSON.stringify(plan.problems));
});

test("a variable the spec leaves unset, set by the unit file and in force, is no change and no restart", () => {
  const facts = readFactsFixture(join(FIXTURES, "no-op", "facts.json"));
  const elsewhere = { DOCKERD_ROOTLESS_ROOTLESSKIT_DISABLE_HOST_LOOPBACK: "false" };
  const withUnitSetting: HostFacts = {
    ...facts,
    unit: { ...facts.unit, environment: { ...facts.unit.environment, ...elsewhere } },
    unitFiles: [{ kind: "fragment", path: facts.unit.fragmentPath, content: "[Service]\nEnvironment=DOCKERD_ROOTLESS_ROOTLESSKIT_DISABLE_HOST_LOOPBACK=false\n" }, ...facts.unitFiles],
    // The script passes no --disable-host-loopback when DISABLE_HOST_LOOPBACK=false.
    running: { ...facts.running, environment: { ...facts.running.environment, ...elsewhere }, rootlesskitArgv: facts.running.rootlesskitArgv!.filter((word) => word !== "--disable-host-loopback") },
  };
  const plan = planHost(specOf(readJson("no-op", "spec.json")), withUnitSetting);
  assert.deepEqual(plan.changes, []);
  assert.equal(plan.restart, false);
  assert.equal(plan.differs, false);
});

describe("observedInputs", () => {
  test("mirrors the host: a host on slirp4netns shows networkDriver slirp4netns", () => {
    const spec = specOf(readJson("overriding-dropin", "spec.json"));
    const observed = observedInputs(spec, readFactsFixture(join(FIXTURES, "overriding-dropin", "facts.json")));
    assert.deepEqual(
      [observed.networkDriver, observed.portDriver, observed.ipv6, observed.mtu, observed.extraFlags],
      ["slirp4netns", "implicit", true, 65520, []],
    );
    assert.equal(observed.connection, spec.connection);
  });

  test("a converged host gives back the inputs, with nothing undefined in them", () => {
    const spec = specOf(readJson("no-op", "spec.json"));
    const observed = observedInputs(spec, readFactsFixture(join(FIXTURES, "no-op", "facts.json")));
    assert.deepEqual(validateNetworkArgs(observed), validateNetworkArgs(readJson("no-op", "spec.json")));
    assert.ok(Object.values(observed).every((value) => value !== undefined));
  });

  test("a value written but not yet reloaded or restarted shows as what the host has, not as desired", () => {
    const spec = specOf(readJson("written-not-reloaded", "spec.json"));
    const facts = readFactsFixture(join(FIXTURES, "written-not-reloaded", "facts.json"));
    const edited = { ...facts, dropIn: { ...facts.dropIn, content: (facts.dropIn.content ?? "").replace(/ROOTLESSKIT_NET=\w+/, "ROOTLESSKIT_NET=vpnkit") } };
    assert.equal(observedInputs(spec, edited).networkDriver, "vpnkit");
  });

  test("an unmanaged host shows no driver", () => {
    const observed = observedInputs(specOf(readJson("no-op", "spec.json")), readFactsFixture(join(FIXTURES, "fresh-host-pasta-ipv6", "facts.json")));
    assert.equal("networkDriver" in observed, false);
    assert.equal(observed.ipv6, false);
  });
});

test("compareVersions orders dotted versions numerically and ignores distribution suffixes", () => {
  assert.ok(compareVersions("2.0.2", "2.3.0") < 0);
  assert.ok(compareVersions("2.10.0", "2.3.0") > 0);
  assert.equal(compareVersions("2.3", "2.3.0"), 0);
  assert.ok(compareVersions("26.1.5+dfsg1", "27.0.0") < 0);
  assert.ok(compareVersions("v3.0.0", "2.3.4") > 0);
});

test("a drop-in that is not valid UTF-8 is refused before anything is written", () => {
  const facts = readFactsFixture(join(FIXTURES, "no-op", "facts.json"));
  const latin1 = { ...facts, dropIn: { ...facts.dropIn, content: `# caf\uFFFD\n${facts.dropIn.content ?? ""}` } };
  const plan = planHost(specOf(readJson("no-op", "spec.json")), latin1);
  assert.ok(plan.problems.some((problem) => problem.severity === "error" && /not valid UTF-8/.test(problem.message)), JSON.stringify(plan.problems));
});

describe("verification targets judged against the host's own network", () => {
  const base = () => ({ spec: JSON.parse(readFileSync(join(FIXTURES, "no-op", "spec.json"), "utf8")) as Record<string, unknown>, facts: readFactsFixture(join(FIXTURES, "no-op", "facts.json")) });
  const withHost = (facts: HostFacts): HostFacts => ({ ...facts, hostIpv6: { addresses: ["fd77:0:0:9::11"], defaultGateways: ["fd77:0:0:9::1"] } });
  const errors = (plan: HostPlan) => plan.problems.filter((problem) => problem.severity === "error");

  test("a target that is one of the host's own addresses (any spelling) is a plan error saying what to set", () => {
    const { spec, facts } = base();
    const plan = planHost(specOf({ ...spec, verify: { targets: [{ address: "FD77::9:0:0:0:11", tcpPort: 8081 }] } }), withHost(facts));
    const [problem, ...more] = errors(plan);
    assert.deepEqual(more, []);
    assert.match(problem.message, /^verify\.targets\[0\]\.address FD77::9:0:0:0:11 is one of the host's own addresses/);
    assert.match(problem.hint, /^set verify\.targets\[0\]\.address to an IPv6 address of your own network/);
  });

  test("pasta with disableHostLoopback: false: the host's default gateway is refused (pasta maps it to the host); with true, or slirp4netns, it is not", () => {
    const { spec, facts } = base();
    const target = { verify: { targets: [{ address: "fd77:0:0:9::1", tcpPort: 53 }] } };
    const mapped = errors(planHost(specOf({ ...spec, ...target, disableHostLoopback: false }), withHost(facts)));
    assert.equal(mapped.length, 1);
    assert.match(mapped[0].message, /is the host's IPv6 default gateway, which pasta maps to the host itself while disableHostLoopback is false/);
    assert.match(mapped[0].hint, /disableHostLoopback: true/);
    assert.deepEqual(errors(planHost(specOf({ ...spec, ...target, disableHostLoopback: true }), withHost(facts))), []);
    assert.deepEqual(errors(planHost(specOf({ ...spec, ...target }), withHost(facts))), [], "the script's default disables host loopback");
  });

  test("a target elsewhere on the host's network, or verification disabled, passes", () => {
    const { spec, facts } = base();
    assert.deepEqual(errors(planHost(specOf({ ...spec, verify: { targets: [{ address: "fd77:0:0:9::53", tcpPort: 53 }] }, disableHostLoopback: false }), withHost(facts))), []);
    assert.deepEqual(errors(planHost(specOf({ ...spec, verify: { enabled: false, targets: [{ address: "fd77:0:0:9::11", tcpPort: 53 }] } }), withHost(facts))), []);
  });
});
