/** RootlessKit's command line parsed as RootlessKit parses it (urfave/cli v2 over Go's flag package). */
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { runningNetwork } from "../../provider/core/in-effect";
import { parseGoInt, parseRootlessKitArgv, flagValue } from "../../provider/core/running";
import type { HostFacts } from "../../provider/core/types";
import { readFactsFixture } from "../helpers/facts-fixture";

const facts = readFactsFixture(join(__dirname, "../../../tests/fixtures/plan/no-op/facts.json"));
const withArgv = (argv: string[]): HostFacts => ({ ...facts, running: { ...facts.running, rootlesskitArgv: argv } });
/** As dockerd-rootless.sh starts it on Debian 13 (lab observation), then the child command and its arguments. */
const ROOTLESSKIT = [
  "rootlesskit", "--state-dir=/run/user/1000/dockerd-rootless", "--net=slirp4netns", "--mtu=65520", "--slirp4netns-sandbox=auto",
  "--slirp4netns-seccomp=auto", "--disable-host-loopback", "--port-driver=builtin", "--copy-up=/etc", "--copy-up=/run", "--propagation=rslave",
];
const CHILD = "/usr/share/docker.io/contrib/dockerd-rootless.sh";
const value = (words: string[], name: string) => flagValue(parseRootlessKitArgv(words), name);

test("reads every knob from RootlessKit's own flags", () => {
  assert.deepEqual(runningNetwork(withArgv([...ROOTLESSKIT, "--ipv6", CHILD])), {
    networkDriver: "slirp4netns", portDriver: "builtin", ipv6: true, mtu: 65520, detachNetns: false, disableHostLoopback: true,
    slirp4netnsSandbox: "auto", slirp4netnsSeccomp: "auto", extraFlags: [],
  });
});

test("the last occurrence of a flag wins: the script's --mtu=65520, then FLAGS' --mtu=1500 runs 1500", () => {
  assert.equal(runningNetwork(withArgv([...ROOTLESSKIT, "--ipv6", "--mtu=1500", CHILD])).mtu, 1500);
  assert.equal(value(["--net=pasta", "--net", "slirp4netns", "x"], "net"), "slirp4netns");
});

test("--flag value and --flag=value, one dash or two; a value flag takes the next word whatever it is", () => {
  assert.equal(value(["--mtu", "1500", "cmd"], "mtu"), "1500");
  assert.equal(value(["-mtu=9000", "cmd"], "mtu"), "9000");
  assert.equal(value(["--net", "--ipv6", "cmd"], "net"), "--ipv6");
  assert.equal(value(["--net", "--ipv6", "cmd"], "ipv6"), undefined);
});

test("an int flag is read as strconv.ParseInt(s, 0, 64): hex, octal, a leading zero", () => {
  assert.equal(value(["--mtu=0x5dc", "c"], "mtu"), "1500");
  assert.equal(value(["--mtu=02734", "c"], "mtu"), "1500");
  assert.equal(parseGoInt("0b101"), 5);
  assert.equal(parseGoInt("1_500"), null);
  assert.equal(parseGoInt("0x_5dc"), 1500);
  assert.match(parseRootlessKitArgv(["--mtu=big", "c"]).error ?? "", /invalid value/);
});

test("booleans: bare is true, =true/=false/=0/=1 as strconv.ParseBool, and never the next word", () => {
  assert.equal(runningNetwork(withArgv([...ROOTLESSKIT, "--ipv6=false", CHILD])).ipv6, false);
  assert.equal(runningNetwork(withArgv([...ROOTLESSKIT, "--ipv6", "--ipv6=0", CHILD])).ipv6, false);
  assert.equal(runningNetwork(withArgv([...ROOTLESSKIT, "--ipv6=false", "--ipv6=T", CHILD])).ipv6, true);
  // `--ipv6 false`: "false" is the first non-flag word, the child command; --ipv6 is on.
  const parsed = parseRootlessKitArgv(["--ipv6", "false", "--mtu=1"]);
  assert.deepEqual([flagValue(parsed, "ipv6"), parsed.command], ["true", ["false", "--mtu=1"]]);
  assert.match(parseRootlessKitArgv(["--ipv6=yes", "c"]).error ?? "", /invalid boolean/);
  assert.equal(runningNetwork(withArgv([...ROOTLESSKIT, "--detach-netns=true", CHILD])).detachNetns, true);
});

test("parsing stops at the child command and after --: dockerd's own flags are not RootlessKit's", () => {
  assert.equal(runningNetwork(withArgv([...ROOTLESSKIT, CHILD, "--ipv6", "--net=host"])).ipv6, false);
  assert.equal(runningNetwork(withArgv([...ROOTLESSKIT, CHILD, "--ipv6", "--net=host"])).networkDriver, "slirp4netns");
  assert.equal(value(["--", "--ipv6", "c"], "ipv6"), undefined);
  assert.deepEqual(parseRootlessKitArgv(["--net=pasta", "-", "--ipv6"]).command, ["-", "--ipv6"]);
});

test("list flags collect every occurrence; -p is --publish", () => {
  assert.equal(value(["--copy-up=/etc", "--copy-up", "/run", "c"], "copy-up"), "/etc /run");
  assert.equal(value(["-p", "8080:80/tcp", "c"], "publish"), "8080:80/tcp");
});

test("flags beyond the script's own are extraFlags, whatever form they take", () => {
  assert.deepEqual(runningNetwork(withArgv([...ROOTLESSKIT, "--debug", "--copy-up", "/var/lib/x", "--cidr", "10.1.0.0/24", CHILD])).extraFlags, ["--debug", "--copy-up=/var/lib/x", "--cidr=10.1.0.0/24"]);
});

test("no daemon: nothing in effect", () => {
  assert.deepEqual(runningNetwork({ ...facts, running: { ...facts.running, rootlesskitArgv: null } }), {
    networkDriver: null, portDriver: null, ipv6: false, mtu: null, detachNetns: false, disableHostLoopback: false, slirp4netnsSandbox: null, slirp4netnsSeccomp: null, extraFlags: [],
  });
});
