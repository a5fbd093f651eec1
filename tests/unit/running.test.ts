import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { runningNetwork } from "../../provider/core/running";
import type { HostFacts } from "../../provider/core/types";

const facts = JSON.parse(readFileSync(join(__dirname, "../../../tests/fixtures/plan/no-op/facts.json"), "utf8")) as HostFacts;
const withArgv = (argv: string[]): HostFacts => ({ ...facts, running: { ...facts.running, rootlesskitArgv: argv } });
/** As dockerd-rootless.sh starts it on Debian 13 (lab observation), then the child command and its arguments. */
const ROOTLESSKIT = [
  "rootlesskit", "--state-dir=/run/user/1000/dockerd-rootless", "--net=slirp4netns", "--mtu=65520", "--slirp4netns-sandbox=auto",
  "--slirp4netns-seccomp=auto", "--disable-host-loopback", "--port-driver=builtin", "--copy-up=/etc", "--copy-up=/run", "--propagation=rslave",
];
const CHILD = "/usr/share/docker.io/contrib/dockerd-rootless.sh";

test("reads driver, port driver, MTU and --ipv6 from RootlessKit's own flags", () => {
  assert.deepEqual(runningNetwork(withArgv([...ROOTLESSKIT, "--ipv6", CHILD])), { networkDriver: "slirp4netns", portDriver: "builtin", ipv6: true, mtu: 65520 });
});

test("dockerd's own --ipv6 after the child command is not RootlessKit's", () => {
  assert.equal(runningNetwork(withArgv([...ROOTLESSKIT, CHILD, "--ipv6", "--net=host"])).ipv6, false);
  assert.equal(runningNetwork(withArgv([...ROOTLESSKIT, CHILD, "--ipv6", "--net=host"])).networkDriver, "slirp4netns");
});

test("no daemon: nothing in effect", () => {
  assert.deepEqual(runningNetwork({ ...facts, running: { ...facts.running, rootlesskitArgv: null } }), { networkDriver: null, portDriver: null, ipv6: false, mtu: null });
});
