/** Verification targets that prove nothing are refused in check, every one at once, each saying what to write instead. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { canonicalIpv6, ipv6Bytes, refusedTarget, sameIpv6 } from "../../provider/core/address";
import { UNKNOWN, validateNetworkArgs } from "../../provider/core/schema";
import type { InputProblem } from "../../provider/core/types";

const KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
const withTargets = (addresses: string[], networkDriver = "pasta") => ({
  connection: { host: "10.77.0.2", user: "dev", privateKey: KEY },
  networkDriver,
  ipv6: true,
  verify: { targets: addresses.map((address) => ({ address, tcpPort: 53 })) },
});

function problemsOf(raw: unknown): InputProblem[] {
  const result = validateNetworkArgs(raw);
  return result.ok ? [] : result.problems;
}

describe("IPv6 parsing", () => {
  test("bytes of every spelling, the dotted IPv4 tail included; invalid text is null", () => {
    assert.deepEqual(ipv6Bytes("::1"), [...Array(15).fill(0), 1]);
    assert.deepEqual(ipv6Bytes("::ffff:192.0.2.1"), [...Array(10).fill(0), 0xff, 0xff, 192, 0, 2, 1]);
    assert.deepEqual(ipv6Bytes("1:2:3:4:5:6:1.2.3.4"), [0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 1, 2, 3, 4]);
    for (const bad of ["", ":::", "1::2::3", "1:2:3:4:5:6:7:8:9", "fe80::1%eth0", "::1.2.3.256", "12345::", "g::1"]) assert.equal(ipv6Bytes(bad), null, bad);
  });

  test("RFC 5952 form makes two spellings of one address equal", () => {
    assert.equal(canonicalIpv6("FD12:3456:789A:0:0:0:0:53"), "fd12:3456:789a::53");
    assert.equal(canonicalIpv6("2001:0:0:1:0:0:0:1"), "2001:0:0:1::1");
    assert.ok(sameIpv6("fd99:0:0:7::1", "FD99::7:0:0:0:1"));
    assert.ok(!sameIpv6("fd99::1", "fd99::2"));
  });
});

describe("targets that prove nothing", () => {
  const refused: [string, RegExp][] = [
    ["::1", /loopback/],
    ["::", /unspecified/],
    ["ff02::1", /multicast \(ff00::\/8\)/],
    ["ff05::1:3", /multicast/],
    ["fe80::1", /link-local \(fe80::\/10\)/],
    ["febf::1", /link-local/],
    ["::ffff:192.0.2.53", /IPv4-mapped/],
    ["::ffff:c000:235", /IPv4-mapped/],
    ["::192.0.2.53", /IPv4-compatible/],
    ["2001:db8:53::1", /documentation prefix 2001:db8::\/32/],
    ["3fff:fff::1", /documentation prefix 3fff::\/20/],
    ["100::53", /discard-only prefix 100::\/64/],
  ];
  for (const [address, why] of refused) {
    test(`${address} is refused under every driver, with the reason and what to write instead`, () => {
      const [problem, ...more] = problemsOf(withTargets([address]));
      assert.deepEqual(more, []);
      assert.equal(problem.property, "verify.targets[0].address");
      assert.match(problem.reason, why);
      assert.ok(problem.reason.startsWith(address), problem.reason);
      assert.match(problem.fix ?? "", /^set verify\.targets\[0\]\.address to an IPv6 address of your own network that /);
    });
  }

  test("the namespace's own prefix fd00::/64 (gateway fd00::2, DNS fd00::3, fd00::100) is refused with slirp4netns and pasta", () => {
    for (const driver of ["slirp4netns", "pasta"]) {
      for (const address of ["fd00::2", "fd00::3", "fd00::100", "fd00::c0:ffee"]) {
        const [problem, ...more] = problemsOf(withTargets([address], driver));
        assert.deepEqual(more, []);
        assert.equal(problem?.property, "verify.targets[0].address", address);
        assert.match(problem.reason, /the namespace's own prefix/);
        assert.ok(problem.reason.endsWith(`(networkDriver "${driver}")`), problem.reason);
        assert.match(problem.fix ?? "", /your own network/);
      }
    }
    // Drivers without IPv6 have no such prefix (their ipv6 is refused on its own); the next /64 is anyone's ULA.
    assert.equal(refusedTarget("fd00::3", "vpnkit"), null);
    assert.deepEqual(problemsOf(withTargets(["fd00:0:0:1::53"], "slirp4netns")), []);
  });

  test("real-looking ULA and global targets are accepted", () => {
    for (const address of ["fd12:3456:789a::53", "fd99:0:0:7::1", "2606:4700:4700::1111", "2a00:1450:4001:82a::200e", "2001:4860:4860::8888", "4000::1", "fc00::1"]) {
      assert.equal(refusedTarget(address, "slirp4netns"), null, address);
      assert.deepEqual(problemsOf(withTargets([address], "slirp4netns")), [], address);
    }
  });

  test('a copied placeholder "SET-ME" says to set the address, not that it is no IPv6 address', () => {
    const [problem, ...more] = problemsOf(withTargets(["SET-ME"]));
    assert.deepEqual(more, []);
    assert.equal(problem.property, "verify.targets[0].address");
    assert.match(problem.reason, /placeholder "SET-ME"/);
    assert.doesNotMatch(problem.reason, /must be an IPv6 address/);
    assert.match(problem.fix ?? "", /^set verify\.targets\[0\]\.address to an IPv6 address of your own network that every host must reach/);
  });

  test("every refused target is listed at once, each with its own path", () => {
    const problems = problemsOf(withTargets(["::1", "fd12:3456:789a::53", "fe80::1", "SET-ME", "fd00::3", "not-an-address"], "slirp4netns"));
    assert.deepEqual(
      problems.map((problem) => problem.property).sort(),
      ["verify.targets[0].address", "verify.targets[2].address", "verify.targets[3].address", "verify.targets[4].address", "verify.targets[5].address"],
    );
    assert.ok(problems.every((problem) => problem.fix), JSON.stringify(problems));
  });

  test("an unknown address (preview) or driver is not judged yet; a known link-local one is, whatever the driver", () => {
    assert.deepEqual(problemsOf(withTargets([UNKNOWN], "slirp4netns")), []);
    assert.deepEqual(problemsOf({ ...withTargets(["fd00::2"]), networkDriver: UNKNOWN }), []);
    assert.deepEqual(problemsOf({ ...withTargets(["fe80::1"]), networkDriver: UNKNOWN }).map((problem) => problem.property), ["verify.targets[0].address"]);
  });
});
