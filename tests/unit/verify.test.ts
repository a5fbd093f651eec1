import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, test } from "node:test";
import type { VerifySpec } from "../../provider/core/types";
import { parseVerification, unfinishedVerification, verifyScript } from "../../provider/core/verify";

const FIXTURES = resolve(__dirname, "../../../tests/fixtures/verify");

function assertSubset(actual: unknown, expected: unknown, path = "result"): void {
  if (expected !== null && typeof expected === "object") {
    assert.ok(actual !== null && typeof actual === "object", `${path} should be an object`);
    if (Array.isArray(expected)) assert.equal((actual as unknown[]).length, expected.length, `${path}.length`);
    for (const [key, value] of Object.entries(expected)) assertSubset((actual as Record<string, unknown>)[key], value, `${path}.${key}`);
    return;
  }
  assert.deepEqual(actual, expected, path);
}

// Real outputs from a Debian 13 lab host (rootlesskit 2.0.2, target fd99:0:0:161::1 port 8081).
for (const name of readdirSync(FIXTURES)) {
  test(`verify fixture ${name}`, () => {
    const stdout = readFileSync(join(FIXTURES, name, "stdout.txt"), "utf8");
    const expected = JSON.parse(readFileSync(join(FIXTURES, name, "expected.json"), "utf8"));
    assertSubset(parseVerification(stdout, { pingGroupRange: expected.pingGroupRange }), expected.result);
  });
}

/** One namespace path's output: the header the outer script prints, then the probe's last attempt. */
function namespaceOutput(attemptLines: string[], target = "RDN target fd99::1 8081 1"): string {
  return ["RDN begin 1", "RDN checkedat 2026-11-27T10:00:00Z", "RDN groups 1000 27", target, "RDN path namespace", "RDN tcptool bash", "RDN attempt 1", ...attemptLines, "RDN done", "RDN end"].join("\n");
}

const ADDRESS = "RDN addr fd00::c0:ffee/64 ok";
const ROUTE = "RDN route default via fe80::2 dev tap0 proto ra metric 1024 pref medium";

test("reachable: ping with rtt and TCP", () => {
  const result = parseVerification(namespaceOutput([ADDRESS, ROUTE, "RDN ping fd99::1 ok 0.412", "RDN tcp fd99::1 8081 ok"]), { pingGroupRange: [0, 2147483647] });
  assert.equal(result.reachable, true);
  assert.equal(result.diagnosis, "reachable");
  assert.equal(result.rttMs, 0.412);
  assert.equal(result.icmp, true);
  assert.equal(result.tcp, true);
  assert.equal(result.checkedAt, "2026-11-27T10:00:00Z");
});

test("ICMP blocked by ping_group_range: ping fails, TCP works, the range excludes every group of the user", () => {
  const output = namespaceOutput([ADDRESS, ROUTE, "RDN ping fd99::1 fail 1 packets transmitted, 0 received, 100% packet loss", "RDN tcp fd99::1 8081 ok"]);
  const blocked = parseVerification(output, { pingGroupRange: [1, 0] });
  assert.equal(blocked.diagnosis, "icmp-blocked-by-ping-group-range");
  assert.match(blocked.detail, /while TCP works/);
  assert.equal(blocked.tcp, true);
  assert.equal(blocked.icmp, false);
  // Same output, but the range includes group 27: the ping failure is the target's, not the sysctl's.
  assert.equal(parseVerification(output, { pingGroupRange: [27, 27] }).diagnosis, "target-unreachable");
});

test("no default route (dockerd turned on forwarding, RAs ignored)", () => {
  const result = parseVerification(namespaceOutput([ADDRESS, "RDN ping fd99::1 fail ping: connect: Network is unreachable", "RDN tcp fd99::1 8081 fail"]), { pingGroupRange: [0, 2147483647] });
  assert.equal(result.diagnosis, "no-default-route");
  assert.deepEqual(result.paths[0].addresses, ["fd00::c0:ffee/64"]);
});

test("only tentative addresses count as none, and the detail names them", () => {
  const result = parseVerification(namespaceOutput(["RDN addr fd00::1/64 tentative", ROUTE, "RDN ping fd99::1 fail x", "RDN tcp fd99::1 8081 fail"]), { pingGroupRange: null });
  assert.equal(result.diagnosis, "no-global-ipv6-address");
  assert.match(result.detail, /tentative: fd00::1\/64/);
});

test("target unreachable: address and route present, probes fail, ping allowed", () => {
  const result = parseVerification(namespaceOutput([ADDRESS, ROUTE, "RDN ping fd99::1 fail 100% packet loss", "RDN tcp fd99::1 8081 fail"]), { pingGroupRange: [0, 2147483647] });
  assert.equal(result.diagnosis, "target-unreachable");
  assert.match(result.detail, /ping fd99::1: 100% packet loss; tcp \[fd99::1\]:8081: no connection/);
});

test("daemon not running: no child_pid", () => {
  const output = ["RDN begin 1", "RDN checkedat 2026-11-27T10:00:00Z", "RDN groups 1000", "RDN target fd99::1 - 1", "RDN path namespace", `RDN nodaemon ${Buffer.from("no live child_pid in /run/user/1000/dockerd-rootless").toString("base64")}`, "RDN end"].join("\n");
  const result = parseVerification(output, { pingGroupRange: null });
  assert.equal(result.diagnosis, "daemon-not-running");
  assert.match(result.detail, /no live child_pid/);
});

test("a container image that is not on the host is its own diagnosis, naming the image", () => {
  const output = namespaceOutput([ADDRESS, ROUTE, "RDN ping fd99::1 ok 1.0", "RDN tcp fd99::1 8081 ok", "RDN path container", `RDN noimage ${Buffer.from("busybox").toString("base64")}`]);
  const result = parseVerification(output, { pingGroupRange: null });
  assert.equal(result.reachable, false);
  assert.equal(result.diagnosis, "probe-image-missing");
  assert.match(result.detail, /container: the image busybox for a bridge container is not on the host/);
});

test("only the last attempt counts (addresses settle after a restart)", () => {
  const output = namespaceOutput(["RDN ping fd99::1 fail unreachable", "RDN tcp fd99::1 8081 fail", "RDN attempt 2", ADDRESS, ROUTE, "RDN ping fd99::1 ok 1.5", "RDN tcp fd99::1 8081 ok"]);
  assert.equal(parseVerification(output, { pingGroupRange: null }).reachable, true);
});

test("output cut off before a probe ran is never success", () => {
  const cut = ["RDN begin 1", "RDN checkedat 2026-11-27T10:00:00Z", "RDN groups 1000", "RDN target fd99::1 8081 1", "RDN path namespace", "RDN tcptool bash", "RDN attempt 1", ADDRESS, ROUTE].join("\n");
  const result = parseVerification(cut, { pingGroupRange: null });
  assert.equal(result.reachable, false);
  assert.equal(result.diagnosis, "target-unreachable");
  assert.match(result.detail, /not probed/);
  assert.equal(parseVerification("", { pingGroupRange: null }).reachable, false);
});

const SPEC: VerifySpec = { enabled: true, targets: [{ address: "fd99::1", tcpPort: 8081, icmp: true }, { address: "fd12:3456:789a::53", icmp: false, tcpPort: 443 }], required: true, timeoutSeconds: 2, image: "local/busybox'x" };

test("verifyScript is verify.sh with its parameters as a quoted header: nothing of the spec is spliced into the text", () => {
  const lines = verifyScript(SPEC, { container: true }).split("\n");
  assert.deepEqual(lines.slice(0, 6), [
    "#!/bin/sh",
    "RDN_TARGETS='fd99::1,8081,1 fd12:3456:789a::53,443,0'",
    "RDN_SECONDS='2'",
    "RDN_UNIT='docker.service'",
    "RDN_IMAGE='local/busybox'\\''x'",
    "RDN_CONTAINER='1'",
  ]);
  const body = lines.slice(6).join("\n");
  assert.ok(!body.includes("fd99::1") && !body.includes("busybox'"), "a spec value in the script's body");
  assert.equal(verifyScript(SPEC, { container: false }).split("\n")[5], "RDN_CONTAINER='0'");
});

test("verifyScript runs for real here: no daemon is diagnosed, targets are announced", () => {
  const run = spawnSync("sh", ["-c", verifyScript(SPEC, { container: false, unit: "no-such-unit.service" })], { encoding: "utf8" });
  assert.equal(run.status, 0, run.stderr);
  const result = parseVerification(run.stdout, { pingGroupRange: null });
  assert.equal(result.diagnosis, "daemon-not-running");
  assert.deepEqual(result.paths[0].targets.map((target) => [target.address, target.tcpPort]), [["fd99::1", 8081], ["fd12:3456:789a::53", 443]]);
  assert.match(result.checkedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
});

describe("what reachable covers: the namespace and the bridge container reported apart", () => {
  const ok = [ADDRESS, ROUTE, "RDN ping fd99::1 ok 0.4", "RDN tcp fd99::1 8081 ok"];
  const withCovers = (covers: string, ...paths: string[][]) =>
    ["RDN begin 1", "RDN checkedat 2026-11-27T10:00:00Z", "RDN groups 1000", `RDN covers ${covers}`, "RDN target fd99::1 8081 1", ...paths.flatMap((lines, index) => [`RDN path ${index === 0 ? "namespace" : "container"}`, "RDN attempt 1", ...lines, "RDN done"]), "RDN end"].join("\n");

  test("namespace only: covers namespace, container null (not probed), paths the namespace alone", () => {
    const result = parseVerification(withCovers("namespace", ok), { pingGroupRange: [0, 2147483647] });
    assert.equal(result.reachable, true);
    assert.equal(result.covers, "namespace");
    assert.equal(result.container, null);
    assert.equal(result.namespace.path, "namespace");
    assert.equal(result.namespace.reachable, true);
    assert.deepEqual(result.paths, [result.namespace]);
  });

  test("namespace and container: each its own result; reachable needs both", () => {
    const result = parseVerification(withCovers("namespace+container", ok, [ROUTE, "RDN ping fd99::1 fail no reply", "RDN tcp fd99::1 8081 fail"]), { pingGroupRange: [0, 2147483647] });
    assert.equal(result.covers, "namespace+container");
    assert.equal(result.namespace.reachable, true);
    assert.equal(result.container?.reachable, false);
    assert.equal(result.container?.diagnosis, "no-global-ipv6-address");
    assert.equal(result.reachable, false);
    assert.deepEqual(result.paths, [result.namespace, result.container]);
  });

  test("a container path announced but cut off is unreachable, never absent", () => {
    const result = parseVerification(withCovers("namespace+container", ok), { pingGroupRange: [0, 2147483647] });
    assert.equal(result.reachable, false);
    assert.match(result.container?.detail ?? "", /no result for a bridge container/);
  });

  test("a verification that did not finish: every covered path verification-unfinished with the reason", () => {
    const result = unfinishedVerification("verify: no answer within 8 s", "namespace+container", "2026-11-27T10:00:00Z");
    assert.equal(result.reachable, false);
    assert.equal(result.diagnosis, "verification-unfinished");
    assert.equal(result.namespace.diagnosis, "verification-unfinished");
    assert.equal(result.container?.diagnosis, "verification-unfinished");
    assert.match(result.detail, /did not finish: verify: no answer within 8 s/);
    assert.equal(unfinishedVerification("lost", "namespace", "now").container, null);
  });
});
