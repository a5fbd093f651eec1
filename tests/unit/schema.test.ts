import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { desiredEnvironment, UNKNOWN, validateNetworkArgs } from "../../provider/core/schema";
import type { InputProblem, NetworkSpec } from "../../provider/core/types";

const KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
const base = (overrides: Record<string, unknown> = {}) => ({
  connection: { host: "10.77.0.2", user: "dev", privateKey: KEY },
  networkDriver: "pasta",
  verify: { targets: [{ address: "fd99::1", tcpPort: 8081 }] },
  ...overrides,
});

function valid(raw: unknown): NetworkSpec {
  const result = validateNetworkArgs(raw);
  assert.ok(result.ok, `expected valid, got ${JSON.stringify(result.ok ? null : result.problems)}`);
  return result.value;
}

function problems(raw: unknown): InputProblem[] {
  const result = validateNetworkArgs(raw);
  assert.ok(!result.ok, "expected problems");
  return result.problems;
}

const properties = (raw: unknown) => problems(raw).map((problem) => problem.property);

describe("defaults", () => {
  test("pasta gets the implicit port driver and MTU 65520; connection defaults as @pulumi/command", () => {
    const spec = valid(base({ __provider: "serialized" }));
    assert.equal(spec.portDriver, "implicit");
    assert.equal(spec.mtu, 65520);
    assert.equal(spec.ipv6, false);
    assert.deepEqual([spec.connection.port, spec.connection.dialErrorLimit, spec.connection.perDialTimeout], [22, 10, 15]);
    assert.deepEqual([spec.unit, spec.dropInName, spec.restart, spec.pastaIpv6Compat], ["docker.service", "override.conf", "on-change", false]);
    assert.deepEqual(spec.verify, { enabled: true, targets: [{ address: "fd99::1", tcpPort: 8081, icmp: true }], required: false, timeoutSeconds: 60, image: "busybox" });
    assert.equal("containerIpv6" in spec, false);
  });

  test("vpnkit gets builtin and 1500; slirp4netns gets builtin and 65520", () => {
    assert.deepEqual([valid(base({ networkDriver: "vpnkit" })).portDriver, valid(base({ networkDriver: "vpnkit" })).mtu], ["builtin", 1500]);
    assert.deepEqual([valid(base({ networkDriver: "slirp4netns" })).portDriver, valid(base({ networkDriver: "slirp4netns" })).mtu], ["builtin", 65520]);
  });

  test("containerIpv6: true means derive the prefix", () => {
    assert.deepEqual(valid(base({ containerIpv6: true })).containerIpv6, {});
    assert.equal(valid(base({ containerIpv6: false })).containerIpv6, undefined);
  });
});

describe("every problem at once, with property paths", () => {
  test("field problems", () => {
    const found = properties({
      connection: { host: "10.77.0.2", user: "dev", port: 70000, privateKey: KEY, proxy: { host: "bastion", user: "jump", dialErrorLimit: "x" } },
      networkDriver: "tap",
      extraFlags: ["--ok", "not-a-flag"],
      dropInName: "../evil.conf",
      unit: "docker",
      verify: { targets: [{ address: "10.0.0.1" }] },
      typo: 1,
    });
    for (const property of ["connection.port", "connection.proxy.dialErrorLimit", "networkDriver", "extraFlags[1]", "dropInName", "unit", "verify.targets[0].address", "typo"]) {
      assert.ok(found.includes(property), `${property} in ${found.join(", ")}`);
    }
  });

  test("field and cross-field problems together", () => {
    const found = problems(base({ portDriver: "builtin", extraFlags: ["--mtu=1500"] }));
    assert.deepEqual(found.map((problem) => problem.property).sort(), ["extraFlags[0]", "portDriver"]);
    assert.match(found.find((problem) => problem.property === "portDriver")?.reason ?? "", /"builtin".*"pasta".*"implicit", "none"/);
    assert.match(found.find((problem) => problem.property === "extraFlags[0]")?.reason ?? "", /--mtu is managed by mtu/);
  });

  test("strings that reach a host refuse control characters, look-alikes and excess length", () => {
    assert.deepEqual(properties(base({ connection: { host: "10.77.0.2", user: "dev\n", privateKey: KEY } })), ["connection.user"]);
    assert.deepEqual(properties(base({ connection: { host: "hоst", user: "dev", privateKey: KEY } })), ["connection.host"]); // Cyrillic о
    assert.deepEqual(properties(base({ connection: { host: "h", user: "dev", privateKey: KEY, knownHostsPath: "/a\0b" } })), ["connection.knownHostsPath"]);
    assert.deepEqual(properties(base({ dropInName: `${"a".repeat(100)}.conf` })), ["dropInName"]);
    assert.deepEqual(properties(base({ dropInName: ".hidden.conf" })), ["dropInName"]);
    assert.deepEqual(properties(base({ extraFlags: ["--label=a;rm"] })), ["extraFlags[0]"]);
  });

  test("hostKey must be an OpenSSH key line or a SHA256 fingerprint", () => {
    const withKey = (hostKey: string) => base({ connection: { host: "h", user: "dev", privateKey: KEY, hostKey } });
    valid(withKey("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl root@host"));
    valid(withKey(`SHA256:${"A".repeat(43)}`));
    assert.deepEqual(properties(withKey("AAAAC3NzaC1lZDI1NTE5")), ["connection.hostKey"]);
  });

  test("owned flags are refused, each naming the input to use", () => {
    const found = problems(base({ networkDriver: "slirp4netns", extraFlags: ["--ipv6", "--net=pasta", "--slirp4netns-sandbox=true", "--copy-up=/etc", "--debug"] }));
    assert.deepEqual(found.map((problem) => problem.property), ["extraFlags[0]", "extraFlags[1]", "extraFlags[2]", "extraFlags[3]"]);
    assert.match(found[0].reason, /managed by ipv6/);
  });

  test("--detach-netns may come through extraFlags (scripts before Docker 29.5 read no DETACH_NETNS), but not beside detachNetns", () => {
    assert.deepEqual(desiredEnvironment(valid(base({ networkDriver: "slirp4netns", ipv6: true, extraFlags: ["--detach-netns"] }))).DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS, "--ipv6 --detach-netns");
    const found = problems(base({ networkDriver: "slirp4netns", detachNetns: true, extraFlags: ["--detach-netns"] }));
    assert.deepEqual(found.map((problem) => problem.property), ["extraFlags"]);
    assert.match(found[0].reason, /use one/);
  });

  test("containerIpv6 prefix must be a /64 ULA outside fd00::/64", () => {
    valid(base({ containerIpv6: { fixedCidrV6: "fd12:3456:789a:1::/64" } }));
    for (const bad of ["fd00::/64", "2001:db8::/64", "fd12::/48", "nonsense"]) {
      assert.deepEqual(properties(base({ containerIpv6: { fixedCidrV6: bad } })), ["containerIpv6.fixedCidrV6"], bad);
    }
  });
});

describe("RootlessKit combinations", () => {
  const cases: [Record<string, unknown>, string | null][] = [
    [{ networkDriver: "pasta", portDriver: "none" }, null],
    [{ networkDriver: "slirp4netns", portDriver: "implicit" }, "portDriver"],
    [{ networkDriver: "vpnkit", portDriver: "slirp4netns" }, "portDriver"],
    [{ networkDriver: "slirp4netns", portDriver: "gvisor-tap-vsock" }, "portDriver"],
    [{ networkDriver: "gvisor-tap-vsock", portDriver: "gvisor-tap-vsock" }, null],
    [{ networkDriver: "gvisor-tap-vsock", ipv6: true }, "ipv6"],
    [{ networkDriver: "vpnkit", ipv6: true }, "ipv6"],
    [{ networkDriver: "lxc-user-nic", ipv6: true }, "ipv6"],
    [{ networkDriver: "slirp4netns", ipv6: true, slirp4netnsSandbox: "true" }, null],
    [{ networkDriver: "pasta", slirp4netnsSeccomp: true }, "slirp4netnsSeccomp"],
    [{ networkDriver: "pasta", ipv6: false, pastaIpv6Compat: true }, "pastaIpv6Compat"],
    [{ networkDriver: "slirp4netns", ipv6: true, pastaIpv6Compat: true }, "pastaIpv6Compat"],
    [{ networkDriver: "pasta", ipv6: true, pastaIpv6Compat: true }, null],
    [{ networkDriver: "pasta", ipv6: true, mtu: 1000 }, "mtu"],
  ];
  for (const [inputs, property] of cases) {
    test(`${JSON.stringify(inputs)} → ${property ?? "valid"}`, () => {
      if (property === null) valid(base(inputs));
      else assert.deepEqual(properties(base(inputs)), [property]);
    });
  }

  test("a connection needs a credential, and so does its proxy, unless an agent runs (SSH_AUTH_SOCK)", () => {
    assert.deepEqual(properties(base({ connection: { host: "h", user: "dev" } })), ["connection"]);
    assert.deepEqual(properties(base({ connection: { host: "h", user: "dev", password: "p", proxy: { host: "b", user: "jump" } } })), ["connection.proxy"]);
    valid(base({ connection: { host: "h", user: "dev", agentSocketPath: "/run/user/0/agent.sock" } }));
    const withAgent = validateNetworkArgs(base({ connection: { host: "h", user: "dev", proxy: { host: "b", user: "jump" } } }), { sshAuthSock: "/tmp/agent.sock" });
    assert.ok(withAgent.ok, JSON.stringify(!withAgent.ok && withAgent.problems));
    assert.match(problems(base({ connection: { host: "h", user: "dev" } }))[0].fix ?? "", /SSH_AUTH_SOCK/);
  });

  test("a missing value is reported as required, with what to set: the user is never assumed to be root", () => {
    const missing = problems({ connection: { host: "h", privateKey: KEY }, verify: { targets: [{ address: "fd99::1" }] } });
    assert.deepEqual(
      missing.map((problem) => [problem.property, problem.reason]),
      [["connection.user", "required"], ["networkDriver", "required"]],
    );
    assert.equal(missing[0].fix, "set connection.user to the user that runs rootless Docker (not root)");
    assert.match(missing[1].fix ?? "", /one of slirp4netns, pasta/);
    assert.deepEqual(problems({ networkDriver: "pasta" }).map((problem) => [problem.property, problem.reason]), [["connection", "required"]]);
  });

  test("an unknown input names the input it most likely means", () => {
    const [typo] = problems(base({ netwrokDriver: "pasta" }));
    assert.deepEqual([typo.property, typo.reason, typo.fix], ["netwrokDriver", "is not a known input", 'did you mean "networkDriver"?']);
    const [nested] = problems(base({ verify: { targets: [{ adress: "fd99::1", tcpPort: 53 }] } })).filter((problem) => problem.reason === "is not a known input");
    assert.deepEqual([nested.property, nested.fix], ["verify.targets[0].adress", 'did you mean "address"?']);
    const [far] = problems(base({ colour: "blue" }));
    assert.equal(far.fix, "check the spelling");
  });
});

describe("Pulumi's unknown sentinel", () => {
  test("unknown values are not validated and skip the rules they take part in", () => {
    valid(base({ networkDriver: UNKNOWN, portDriver: "builtin", ipv6: true }));
    valid(base({ connection: UNKNOWN }));
    valid(base({ connection: { host: UNKNOWN, user: "dev", port: UNKNOWN, privateKey: UNKNOWN }, extraFlags: [UNKNOWN, "--debug"] }));
    valid(base({ verify: { targets: [{ address: UNKNOWN }] } }));
  });

  test("known problems are still reported next to unknown values", () => {
    assert.deepEqual(properties(base({ connection: { host: UNKNOWN, user: "dev" }, extraFlags: [UNKNOWN, "--net=x"] })), ["extraFlags[1]", "connection"]);
  });
});

test("warnings are returned, not problems", () => {
  const result = validateNetworkArgs(base({ connection: { host: "h", user: "dev", privateKey: KEY, dangerouslySkipHostKeyVerification: true } }));
  assert.ok(result.ok);
  assert.equal(result.warnings.length, 1);
  assert.match(result.warnings[0], /dangerouslySkipHostKeyVerification.*h/);
});

describe("desiredEnvironment", () => {
  test("the seed recipe: pasta, implicit, IPv6, MTU always written", () => {
    assert.deepEqual(desiredEnvironment(valid(base({ ipv6: true }))), {
      DOCKERD_ROOTLESS_ROOTLESSKIT_NET: "pasta",
      DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER: "implicit",
      DOCKERD_ROOTLESS_ROOTLESSKIT_MTU: "65520",
      DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS: "--ipv6",
    });
  });

  test("FLAGS only when non-empty; the optional variables only when set", () => {
    const env = desiredEnvironment(valid(base({ networkDriver: "slirp4netns", extraFlags: ["--debug"], disableHostLoopback: false, detachNetns: true, slirp4netnsSandbox: true, slirp4netnsSeccomp: "auto" })));
    assert.deepEqual(env, {
      DOCKERD_ROOTLESS_ROOTLESSKIT_NET: "slirp4netns",
      DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER: "builtin",
      DOCKERD_ROOTLESS_ROOTLESSKIT_MTU: "65520",
      DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS: "--debug",
      DOCKERD_ROOTLESS_ROOTLESSKIT_DISABLE_HOST_LOOPBACK: "false",
      DOCKERD_ROOTLESS_ROOTLESSKIT_DETACH_NETNS: "true",
      DOCKERD_ROOTLESS_ROOTLESSKIT_SLIRP4NETNS_SANDBOX: "true",
      DOCKERD_ROOTLESS_ROOTLESSKIT_SLIRP4NETNS_SECCOMP: "auto",
    });
    assert.equal("DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS" in desiredEnvironment(valid(base())), false);
  });
});

test("a verify target that checks nothing (no ICMP, no TCP port) is refused", () => {
  assert.deepEqual(properties(base({ verify: { targets: [{ address: "fd99::1", icmp: false }] } })), ["verify.targets[0].icmp"]);
  valid(base({ verify: { targets: [{ address: "fd99::1", icmp: false, tcpPort: 80 }] } }));
});

describe("timeouts", () => {
  test("defaults far above a healthy host's needs; verifySeconds derived unless given", () => {
    assert.deepEqual(valid(base()).timeouts, { factsSeconds: 60, applySeconds: 600 });
    assert.deepEqual(valid(base({ timeouts: { factsSeconds: 10, verifySeconds: 200 } })).timeouts, { factsSeconds: 10, applySeconds: 600, verifySeconds: 200 });
  });

  test("limits that could never let a step finish are refused with the reason", () => {
    const found = problems(base({ timeouts: { factsSeconds: 0, applySeconds: 30, verifySeconds: 20, other: 1 }, verify: { targets: [{ address: "fd99::1" }], timeoutSeconds: 45 } }));
    const byProperty = new Map(found.map((problem) => [problem.property, problem.reason]));
    assert.ok(byProperty.has("timeouts.factsSeconds"), JSON.stringify(found));
    assert.ok(byProperty.has("timeouts.applySeconds"), JSON.stringify(found));
    assert.ok(byProperty.has("timeouts.other"), JSON.stringify(found));
    assert.match(byProperty.get("timeouts.verifySeconds") ?? "", /must exceed verify\.timeoutSeconds \(45\)/);
  });
});
