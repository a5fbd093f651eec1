import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";

// Its own instance, so a demo lab (`lab`) can keep running beside the tests.
process.env.RDL_LAB = "labtest";

import { clearLinkImpairment, labDown, labUp, setLinkImpairment, userExec, type LabHost } from "../../lab/api";
import { run } from "../../lab/exec";
import { currentInstance, instanceNamed, STATE_ROOT } from "../../lab/instance";
import { labNetnsList } from "../../lab/network";
import { mountsUnder, processesWhere } from "../../lab/system";

let trixie: LabHost;
let bookworm: LabHost;
let knownHosts: string;

before(async () => {
  await labDown(); // leftovers of an interrupted run
  [trixie] = await labUp({ profile: "trixie" });
  [bookworm] = await labUp({ profile: "bookworm" });
  // Built only from what the lab reports, so a login proves the offered host key is `hostPublicKey`.
  knownHosts = join(mkdtempSync(join(tmpdir(), "labtest-")), "known_hosts");
  writeFileSync(knownHosts, [trixie, bookworm].map((host) => `${host.address} ${host.hostPublicKey}\n`).join(""));
});

after(() => labDown());

function ssh(host: LabHost, command: string) {
  return run(
    [
      "ssh", "-F", "/dev/null", "-i", host.privateKeyPath, "-p", String(host.port),
      "-o", "StrictHostKeyChecking=yes", "-o", `UserKnownHostsFile=${knownHosts}`, "-o", "GlobalKnownHostsFile=/dev/null",
      "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
      `${host.user}@${host.address}`, command,
    ],
    { timeoutMs: 120_000 },
  );
}

/** Retries a command in the host until it succeeds (the RootlessKit namespace takes a moment after a restart). */
async function eventually(host: LabHost, command: string, attempts = 60) {
  let result = await userExec(host.name, command);
  for (let attempt = 1; attempt < attempts && result.exitCode !== 0; attempt++) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    result = await userExec(host.name, command);
  }
  return result;
}

const IN_ROOTLESSKIT_NS = "nsenter -U --preserve-credentials -n -t $(cat $XDG_RUNTIME_DIR/dockerd-rootless/child_pid)";

test("rootless Docker is active on both hosts, seen over real SSH", async () => {
  for (const host of [trixie, bookworm]) {
    const result = await ssh(host, "systemctl --user is-active docker");
    assert.equal(result.stdout.trim(), "active", `${host.name}: ${result.stderr}`);
  }
});

test("each host offers the sshd key the lab reports, and the keys differ", async () => {
  for (const host of [trixie, bookworm]) {
    const scan = await run(["ssh-keyscan", "-t", "ed25519", "-p", String(host.port), host.address], { timeoutMs: 30_000 });
    const offered = scan.stdout.split("\n").find((line) => line.startsWith(host.address));
    assert.equal(offered?.split(" ").slice(1).join(" "), host.hostPublicKey);
  }
  assert.notEqual(trixie.hostPublicKey, bookworm.hostPublicKey);
});

test("trixie: default slirp4netns has no IPv6 default route; with --ipv6 the IPv6 target answers TCP", async () => {
  const before = await eventually(trixie, `${IN_ROOTLESSKIT_NS} ip -6 route show default`);
  assert.equal(before.exitCode, 0, before.stderr);
  assert.equal(before.stdout.trim(), "");

  const dropIn = await userExec(
    trixie.name,
    "mkdir -p ~/.config/systemd/user/docker.service.d && " +
      "printf '[Service]\\nEnvironment=DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS=--ipv6\\n' > ~/.config/systemd/user/docker.service.d/override.conf && " +
      "systemctl --user daemon-reload && systemctl --user restart docker",
  );
  assert.equal(dropIn.exitCode, 0, dropIn.stderr);
  const url = `http://[${trixie.target.ipv6}]:${trixie.target.ipv6TcpPort}/`;
  const reached = await eventually(trixie, `${IN_ROOTLESSKIT_NS} curl -sS -m 3 ${url}`);
  assert.equal(reached.exitCode, 0, reached.stderr);
  assert.match(reached.stdout, new RegExp(`^rdl-target ${trixie.target.ipv6} `));
});

test("bookworm runs RootlessKit 1.1.0", async () => {
  const result = await ssh(bookworm, "rootlesskit --version");
  assert.match(result.stdout, /\b1\.1\.0\b/, result.stderr);
});

test("link loss is real: pings to the target get lost, and none after clearing it", async () => {
  const pingLoss = async () => {
    const result = await userExec(trixie.name, `ping -c 40 -i 0.05 -W 1 -q ${trixie.target.ipv6}`);
    return Number(/(\d+(?:\.\d+)?)% packet loss/.exec(result.stdout)?.[1]);
  };
  await setLinkImpairment(trixie.name, { lossPercent: 50 });
  try {
    assert.ok((await pingLoss()) >= 25, "about 75% of round trips should be lost with 50% loss each way");
  } finally {
    await clearLinkImpairment(trixie.name);
  }
  assert.equal(await pingLoss(), 0);
});

test("down leaves no nspawn process, netns or mount of the instance", async () => {
  const instance = currentInstance();
  const hostsDir = join(instance.stateDir, "hosts");
  assert.ok(processesWhere((argv) => argv.some((arg) => arg.includes(hostsDir))).length > 0, "hosts were running before down");
  await labDown();
  assert.deepEqual(processesWhere((argv) => argv.some((arg) => arg.includes(hostsDir))), []);
  assert.deepEqual(await labNetnsList(instance), []);
  assert.deepEqual(mountsUnder(instance.stateDir), []);
  assert.equal(readFileSync("/proc/mounts", "utf8").includes(instance.stateDir), false);
  assert.notEqual((await run(["ip", "link", "show", instance.rootLink])).exitCode, 0, "the root link is gone");
});

test("an instance skips a subnet that another instance has claimed", () => {
  const preferred = instanceNamed("labclaimtest").subnet;
  const other = join(STATE_ROOT, "labclaimother");
  mkdirSync(other, { recursive: true });
  try {
    writeFileSync(join(other, "subnet"), `${preferred}\n`);
    assert.notEqual(instanceNamed("labclaimtest").subnet, preferred);
  } finally {
    rmSync(other, { recursive: true, force: true });
  }
  assert.equal(instanceNamed("labclaimtest").subnet, preferred);
});
