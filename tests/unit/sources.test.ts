/** Which file, line or environment decides each variable, and what the plan makes of it (issue 9). */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { planHost } from "../../provider/core/plan";
import { validateNetworkArgs } from "../../provider/core/schema";
import { dropInDirNames, environmentModel, parseEnvironmentFile, unitLoad } from "../../provider/core/sources";
import type { HostFacts, NetworkSpec, UnitFileOnDisk } from "../../provider/core/types";
import { readFactsFixture } from "../helpers/facts-fixture";

const FIXTURES = join(__dirname, "../../../tests/fixtures/plan");
const readJson = <T>(dir: string, name: string): T => JSON.parse(readFileSync(join(FIXTURES, dir, name), "utf8")) as T;
const USER_DIR = "/home/dev/.config/systemd/user/docker.service.d";

function spec(overrides: Record<string, unknown> = {}): NetworkSpec {
  const validation = validateNetworkArgs({ ...readJson<Record<string, unknown>>("no-op", "spec.json"), ...overrides });
  assert.ok(validation.ok);
  return validation.value;
}
/** The in-sync pasta host of the no-op fixture, with more files on disk (search-path ordered as given). */
function host(extra: UnitFileOnDisk[], more: Partial<HostFacts> = {}): HostFacts {
  const facts = readFactsFixture(join(FIXTURES, "no-op", "facts.json"));
  return { ...facts, unitFiles: [...facts.unitFiles, ...extra], ...more };
}
const dropin = (path: string, content: string): UnitFileOnDisk => ({ kind: "dropin", path, content });
const errors = (facts: HostFacts, overrides: Record<string, unknown> = {}) => planHost(spec(overrides), facts).problems.filter((problem) => problem.severity === "error");

describe("the drop-in directories and files systemd loads", () => {
  test("drop-in directory names: the unit's, its template's, each dash prefix, the type's (dropin.c)", () => {
    assert.deepEqual(dropInDirNames("docker.service"), ["docker.service.d", "service.d"]);
    assert.deepEqual(dropInDirNames("foo-bar-baz.service"), ["foo-bar-baz.service.d", "foo-bar-.service.d", "foo-.service.d", "service.d"]);
    assert.deepEqual(dropInDirNames("a-b@x.service"), ["a-b@x.service.d", "a-b@.service.d", "a-.service.d", "a-@x.service.d", "a-@.service.d", "service.d"]);
  });

  test("one file per name, from the highest-priority directory, applied in name order; /dev/null masks", () => {
    const files: UnitFileOnDisk[] = [
      { kind: "fragment", path: "/home/dev/.config/systemd/user/docker.service", content: "[Service]\n" },
      dropin(`${USER_DIR}/override.conf`, "ours"),
      dropin(`${USER_DIR}/20-null.conf`, null as unknown as string),
      dropin("/etc/systemd/user/docker.service.d/override.conf", "admin"),
      dropin("/etc/systemd/user/docker.service.d/20-null.conf", "masked by /dev/null"),
      dropin("/etc/systemd/user/docker.service.d/10-site.conf", "site"),
      { kind: "fragment", path: "/usr/lib/systemd/user/docker.service", content: "[Service]\n" },
    ];
    const load = unitLoad(files);
    assert.equal(load.fragment?.path, "/home/dev/.config/systemd/user/docker.service");
    assert.deepEqual(
      load.dropIns.map((file) => file.path),
      ["/etc/systemd/user/docker.service.d/10-site.conf", `${USER_DIR}/override.conf`],
    );
    assert.deepEqual(
      load.masked.map(({ file, by }) => [file.path, by.path]),
      [
        ["/etc/systemd/user/docker.service.d/override.conf", `${USER_DIR}/override.conf`],
        ["/etc/systemd/user/docker.service.d/20-null.conf", `${USER_DIR}/20-null.conf`],
      ],
    );
  });
});

describe("who decides a variable", () => {
  test("manager < Environment= < EnvironmentFile=, then UnsetEnvironment=; each decision names its file and line", () => {
    const facts = host(
      [
        dropin(`${USER_DIR}/zz-files.conf`, "[Service]\nEnvironmentFile=-%h/env\nEnvironmentFile=/etc/missing.env\nUnsetEnvironment=DOCKERD_ROOTLESS_ROOTLESSKIT_MTU=1\n"),
        dropin(`${USER_DIR}/zz-unset.conf`, "[Service]\n\nUnsetEnvironment=DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER\n"),
      ],
      {
        environmentFiles: [{ path: "/home/dev/env", content: "# comment\nDOCKERD_ROOTLESS_ROOTLESSKIT_NET='vpnkit'\n" }],
        managerEnvironment: { DOCKERD_ROOTLESS_ROOTLESSKIT_DETACH_NETNS: "true" },
        environmentD: [{ path: "/home/dev/.config/environment.d/50-docker.conf", content: "DOCKERD_ROOTLESS_ROOTLESSKIT_DETACH_NETNS=true\n" }],
      },
    );
    const model = environmentModel(facts, facts.unitFiles);
    const decision = (suffix: string) => model.decisions.get(`DOCKERD_ROOTLESS_ROOTLESSKIT_${suffix}`);
    assert.deepEqual(decision("NET"), { value: "vpnkit", kind: "environment-file", path: "/home/dev/env", line: 2 });
    assert.deepEqual(decision("PORT_DRIVER"), { value: undefined, kind: "unset", path: `${USER_DIR}/zz-unset.conf`, line: 3 });
    assert.equal(decision("MTU")?.value, "65520", "VAR=VALUE unsets only that value");
    assert.deepEqual(decision("DETACH_NETNS"), { value: "true", kind: "manager", path: "/home/dev/.config/environment.d/50-docker.conf", line: null });
    assert.deepEqual(model.missingEnvironmentFiles, [{ path: "/etc/missing.env", unitFile: `${USER_DIR}/zz-files.conf`, line: 3 }]);
  });

  test("an EnvironmentFile= is read as env-file.c reads it", () => {
    const content = "A=1\n export B=2\nC = 'x y' \nD=\"q \\\"r\\\" \\n\"\nE=a\\\nb\n# F=no\nG=  spaced out  \n; H=no\nI";
    assert.deepEqual(
      parseEnvironmentFile(content).map(({ name, value }) => [name, value]),
      [
        ["A", "1"],
        ["C", "x y"],
        ["D", 'q "r" \\n'],
        ["E", "ab"],
        ["G", "spaced out"],
      ],
    );
  });
});

describe("the plan names the deciding source", () => {
  test("observation 1: a drop-in written after the last daemon-reload is named as what the next reload brings, and apply refuses", () => {
    const facts = host([dropin(`${USER_DIR}/zz-later.conf`, "[Service]\nEnvironment=DOCKERD_ROOTLESS_ROOTLESSKIT_NET=vpnkit\n")], {});
    const plan = planHost(spec(), { ...facts, unit: { ...facts.unit, needDaemonReload: true } });
    const row = plan.changes.find((change) => change.property === "DOCKERD_ROOTLESS_ROOTLESSKIT_NET");
    assert.deepEqual(row, {
      level: "effective",
      property: "DOCKERD_ROOTLESS_ROOTLESSKIT_NET",
      desired: "pasta",
      actual: "vpnkit",
      cause: `${USER_DIR}/zz-later.conf:2, written after the last daemon-reload, sets it: the next reload brings it`,
    });
    const error = plan.problems.find((problem) => problem.severity === "error");
    assert.match(error?.message ?? "", /zz-later\.conf:2 was written after the last daemon-reload and sets DOCKERD_ROOTLESS_ROOTLESSKIT_NET=vpnkit/);
  });

  test("observation 7: a same-named drop-in in /etc/systemd/user is masked by ours: a warning listing what it sets, no error", () => {
    const admin = dropin("/etc/systemd/user/docker.service.d/override.conf", "[Service]\nEnvironment=DOCKERD_ROOTLESS_ROOTLESSKIT_NET=vpnkit HTTP_PROXY=http://proxy:3128\nLimitNOFILE=4096\n");
    const facts = host([admin]);
    assert.deepEqual(errors(facts), []);
    const warning = planHost(spec(), facts).problems.find((problem) => problem.message.includes("masks"));
    assert.match(warning?.message ?? "", /masks \/etc\/systemd\/user\/docker\.service\.d\/override\.conf/);
    assert.match(warning?.message ?? "", /HTTP_PROXY=http:\/\/proxy:3128; LimitNOFILE=4096/);
    // Before our file exists, the admin's file is what systemd loads: still only a warning, and we write ours.
    const fresh = { ...facts, dropIn: { ...facts.dropIn, content: null }, unitFiles: [admin] };
    assert.deepEqual(errors(fresh), []);
  });

  test("our drop-in masked by a same-named file in a higher-priority directory is an error", () => {
    const control = dropin("/home/dev/.config/systemd/user.control/docker.service.d/override.conf", "[Service]\n");
    const facts = host([]);
    const masked = errors({ ...facts, unitFiles: [control, ...facts.unitFiles] });
    assert.match(masked[0]?.message ?? "", /is masked by \/home\/dev\/\.config\/systemd\/user\.control/);
  });

  test("observation 4 (core half): EnvironmentFile=, UnsetEnvironment= and the manager's environment are named as the decider", () => {
    const envFile = host([dropin(`${USER_DIR}/10-env.conf`, "[Service]\nEnvironmentFile=/home/dev/docker.env\n")], {
      environmentFiles: [{ path: "/home/dev/docker.env", content: "DOCKERD_ROOTLESS_ROOTLESSKIT_NET=slirp4netns\n" }],
    });
    assert.match(errors(envFile)[0]?.message ?? "", /EnvironmentFile= \/home\/dev\/docker\.env:1 sets DOCKERD_ROOTLESS_ROOTLESSKIT_NET=slirp4netns/);
    const unset = host([dropin(`${USER_DIR}/10-unset.conf`, "[Service]\nUnsetEnvironment=DOCKERD_ROOTLESS_ROOTLESSKIT_MTU\n")]);
    assert.match(errors(unset)[0]?.message ?? "", /UnsetEnvironment= in .*10-unset\.conf:2 unsets DOCKERD_ROOTLESS_ROOTLESSKIT_MTU/);
    const manager = host([], { managerEnvironment: { DOCKERD_ROOTLESS_ROOTLESSKIT_DETACH_NETNS: "true" } });
    // The manager's environment is the lowest source: our Environment= line beats it.
    assert.deepEqual(errors(manager, { detachNetns: false }), []);
  });

  test("observation 5: ipv6 false beats an earlier drop-in's FLAGS by writing FLAGS empty; a later one is an error", () => {
    const early = host([dropin("/etc/systemd/user/docker.service.d/10-site.conf", "[Service]\nEnvironment=DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS=--ipv6\n")]);
    const plan = planHost(spec({ ipv6: false }), early);
    assert.deepEqual(plan.problems.filter((problem) => problem.severity === "error"), []);
    assert.match(plan.writes[0]?.content ?? "", /^Environment="DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS="$/m);
    const late = host([dropin(`${USER_DIR}/zz-flags.conf`, "[Service]\nEnvironment=DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS=--ipv6\n")]);
    const loaded = { ...late, unit: { ...late.unit, dropInPaths: [...late.unit.dropInPaths, `${USER_DIR}/zz-flags.conf`] } };
    assert.match(errors(loaded, { ipv6: false })[0]?.message ?? "", /zz-flags\.conf:2 sets DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS=--ipv6 after our drop-in .*, so DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS= \(no flags\) cannot take effect/);
  });

  test("observation 8: a drop-in whose syntax error hides one of our variables is refused, naming file and line", () => {
    const facts = host([dropin(`${USER_DIR}/zz-broken.conf`, '[Service]\n\nEnvironment=A=1 "DOCKERD_ROOTLESS_ROOTLESSKIT_NET=vpnkit\n')]);
    assert.match(errors(facts)[0]?.message ?? "", /zz-broken\.conf:3: Environment= has an unterminated double quote/);
  });
});
