import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { editDropIn, effectiveFromDropIns, managedAssignments, parseEnvironmentValue, parseUnitFile, quoteAssignment } from "../../provider/core/dropin";

/** tests/fixtures/dropin/<case>/{input.conf (absent = no file), desired.json, expected.conf (absent = file removed)} */
const FIXTURES = join(__dirname, "../../../tests/fixtures/dropin");

interface DesiredFixture {
  environment: Record<string, string>;
  execStartPost: string | null;
  fileRemoved?: boolean;
}

const readIfExists = (path: string) => (existsSync(path) ? readFileSync(path, "utf8") : null);

describe("editDropIn fixtures", () => {
  for (const name of readdirSync(FIXTURES).sort()) {
    const dir = join(FIXTURES, name);
    const input = readIfExists(join(dir, "input.conf"));
    const desired = JSON.parse(readFileSync(join(dir, "desired.json"), "utf8")) as DesiredFixture;
    const expected = readIfExists(join(dir, "expected.conf"));

    test(`${name}: produces expected.conf`, () => {
      assert.equal(expected === null, desired.fileRemoved === true, "a case has expected.conf or says fileRemoved");
      assert.equal(editDropIn(input, desired.environment, desired.execStartPost), expected);
    });

    test(`${name}: systemd reads back exactly the desired assignments`, () => {
      assert.deepEqual(managedAssignments(expected), desired.environment);
    });

    test(`${name}: applying twice changes nothing more`, () => {
      if (expected === null) return;
      assert.equal(editDropIn(expected, desired.environment, desired.execStartPost), expected);
    });

    test(`${name}: every line without our settings keeps its bytes`, () => {
      const ours = /DOCKERD_ROOTLESS_ROOTLESSKIT_(NET|PORT_DRIVER|MTU|FLAGS)=|pasta-ipv6-compat|^# Managed by/;
      const foreign = parseUnitFile(input ?? "").filter((line) => !ours.test(line.raw) && line.kind !== "section");
      for (const line of foreign) assert.ok(expected?.includes(line.raw), `kept: ${JSON.stringify(line.raw)}`);
    });
  }
});

describe("parseUnitFile", () => {
  test("the lines' raw text concatenates back to the file", () => {
    for (const name of readdirSync(FIXTURES)) {
      const input = readIfExists(join(FIXTURES, name, "input.conf"));
      if (input !== null) assert.equal(parseUnitFile(input).map((line) => line.raw).join(""), input);
    }
  });

  test("joins continuations, skips comments inside them and strips around keys and values", () => {
    const lines = parseUnitFile("[Service]\r\n  Environment = A=1 \\\r\n; skipped\r\n  B=2\r\nExecStart=/x\\\\\r\n");
    assert.deepEqual(
      lines.map((line) => [line.kind, line.section, line.key, line.value]),
      [
        ["section", "Service", "", "Service"],
        ["setting", "Service", "Environment", "A=1    B=2"],
        ["setting", "Service", "ExecStart", "/x\\\\"],
      ],
    );
    assert.deepEqual(lines[1].embeddedComments, ["; skipped\r\n"]);
  });

  test("a trailing backslash at the end of the file still ends the line", () => {
    const lines = parseUnitFile("[Service]\nEnvironment=A=1 \\");
    assert.equal(lines[1].value, "A=1");
  });
});

describe("parseEnvironmentValue", () => {
  test("an empty value resets the list", () => {
    assert.deepEqual(parseEnvironmentValue(""), { reset: true, assignments: [], problems: [] });
  });

  test("quotes, concatenation, C escapes and %%", () => {
    assert.deepEqual(parseEnvironmentValue(`"A=x \\"y\\"" B='q r'\\x41 C=a"b c"d D=\\s\\t E=100%% F=\\101`), {
      reset: false,
      problems: [],
      assignments: [
        ["A", 'x "y"'],
        ["B", "q rA"],
        ["C", "ab cd"],
        ["D", " \t"],
        ["E", "100%"],
        ["F", "A"],
      ],
    });
  });

  test("words that are not assignments are ignored; at a bad escape or open quote systemd keeps the words before it", () => {
    const only = (...assignments: [string, string][]) => ({ reset: false, assignments, problems: [] });
    assert.deepEqual(parseEnvironmentValue("NOEQUALS 1A=x =y OK=1"), only(["OK", "1"]));
    assert.deepEqual(parseEnvironmentValue("A=1 B=\\q C=3"), only(["A", "1"]));
    assert.deepEqual(parseEnvironmentValue('A=1 "B=2'), only(["A", "1"]));
    assert.deepEqual(parseEnvironmentValue("A=1 B=\\x00"), only(["A", "1"]));
  });

  test("what systemd ignores after a syntax error is a problem when it names one of our variables (observation 8)", () => {
    const parsed = parseEnvironmentValue('DOCKERD_ROOTLESS_ROOTLESSKIT_NET=pasta "BROKEN');
    assert.deepEqual(parsed.assignments, [["DOCKERD_ROOTLESS_ROOTLESSKIT_NET", "pasta"]]);
    assert.deepEqual(parsed.problems, []);
    assert.match(parseEnvironmentValue('A=1 "DOCKERD_ROOTLESS_ROOTLESSKIT_NET=vpnkit').problems[0], /unterminated double quote/);
  });

  test("specifiers the facts resolve are expanded; a word of ours with any other is refused", () => {
    const values = { home: "/home/dev", user: "dev", uid: 1000, xdgRuntimeDir: "/run/user/1000" };
    assert.deepEqual(parseEnvironmentValue("A=%h/x B=%u:%U C=%t D=100%%", values).assignments, [
      ["A", "/home/dev/x"],
      ["B", "dev:1000"],
      ["C", "/run/user/1000"],
      ["D", "100%"],
    ]);
    const refused = parseEnvironmentValue("DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS=--x=%H OTHER=%H", values);
    assert.deepEqual(refused.assignments, []);
    assert.equal(refused.problems.length, 1);
    assert.match(refused.problems[0], /specifier/);
  });

  test("quoteAssignment reads back exactly, whatever the value", () => {
    for (const value of ["plain", "with space", 'q"uote', "back\\slash", "per%cent %h", "tab\tnew\nline", "'single'", ""]) {
      assert.deepEqual(parseEnvironmentValue(quoteAssignment("V", value)).assignments, [["V", value]]);
    }
  });
});

describe("effective environment across drop-ins", () => {
  const ours = { path: "/home/dev/.config/systemd/user/docker.service.d/override.conf", content: "[Service]\nEnvironment=DOCKERD_ROOTLESS_ROOTLESSKIT_NET=pasta\n" };
  const early = { path: "/etc/systemd/user/docker.service.d/10-site.conf", content: "[Service]\nEnvironment=DOCKERD_ROOTLESS_ROOTLESSKIT_NET=vpnkit\n" };
  const late = { path: "/home/dev/.config/systemd/user/docker.service.d/zz-local.conf", content: "[Service]\nEnvironment=DOCKERD_ROOTLESS_ROOTLESSKIT_NET=slirp4netns OTHER=1\n" };

  test("later files win and a reset clears what came before", () => {
    assert.deepEqual(effectiveFromDropIns([early.content, ours.content, late.content]), { DOCKERD_ROOTLESS_ROOTLESSKIT_NET: "slirp4netns", OTHER: "1" });
    assert.deepEqual(effectiveFromDropIns([ours.content, "[Service]\nEnvironment=\nEnvironment=B=2\n"]), { B: "2" });
  });

});

test("editDropIn refuses variables it does not own", () => {
  assert.throws(() => editDropIn(null, { PATH: "/bin" }, null), RangeError);
});
