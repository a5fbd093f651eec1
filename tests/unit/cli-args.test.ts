import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DEFAULT_CONCURRENCY, parseCliArgs } from "../../provider/cli/args";

function mistake(argv: string[]) {
  const parsed = parseCliArgs(argv);
  if (parsed.kind !== "error") assert.fail(`expected a mistake, got ${JSON.stringify(parsed)}`);
  return parsed;
}

function options(argv: string[]) {
  const parsed = parseCliArgs(argv);
  if (parsed.kind !== "run") assert.fail(`expected options, got ${JSON.stringify(parsed)}`);
  return parsed.options;
}

describe("parseCliArgs", () => {
  it("parses a plan against a hosts file with defaults", () => {
    assert.deepEqual(options(["plan", "--hosts", "hosts.yaml", "--json"]), {
      command: "plan",
      hostsFile: "hosts.yaml",
      lab: false,
      json: true,
      quiet: false,
      concurrency: DEFAULT_CONCURRENCY,
      waves: { batchSize: undefined, maxUnavailable: undefined, canary: undefined },
      diff: false,
    });
  });

  it("parses apply's wave options, --quiet, --trace, --hosts - and --limit (comma lists, repeated)", () => {
    const parsed = options(["apply", "--lab", "--batch-size=2", "--canary", "1", "--concurrency", "3", "-q", "--trace", "/tmp/t.jsonl", "--limit", "a,b", "--limit", "c"]);
    assert.equal(parsed.lab, true);
    assert.equal(parsed.quiet, true);
    assert.equal(parsed.trace, "/tmp/t.jsonl");
    assert.deepEqual(parsed.limit, ["a", "b", "c"]);
    assert.equal(parsed.concurrency, 3);
    assert.deepEqual(parsed.waves, { batchSize: 2, maxUnavailable: undefined, canary: 1 });
    assert.equal(options(["verify", "--hosts", "-"]).hostsFile, "-");
  });

  it("answers --version, help and --help without needing hosts", () => {
    assert.deepEqual(parseCliArgs(["--version"]), { kind: "version", json: false });
    assert.deepEqual(parseCliArgs(["--version", "--json"]), { kind: "version", json: true });
    assert.deepEqual(parseCliArgs(["help"]), { kind: "help" });
    assert.deepEqual(parseCliArgs(["help", "apply"]), { kind: "help", command: "apply" });
    assert.deepEqual(parseCliArgs(["apply", "--help"]), { kind: "help", command: "apply" });
    assert.deepEqual(parseCliArgs(["-h"]), { kind: "help" });
  });

  it("refuses mistakes with one line naming them and a short hint", () => {
    assert.match(mistake([]).message, /a command is required/);
    assert.deepEqual(mistake(["plna", "--lab"]), { kind: "error", message: 'unknown command "plna"', fix: 'did you mean "plan"? (commands: plan, apply, verify, validate, script)', json: false });
    assert.deepEqual(mistake(["plan", "--hots", "h.yaml"]).fix, "did you mean --hosts? (see: rootless-docker-net help)");
    assert.equal(mistake(["plan", "--hots", "h.yaml"]).message, "unknown option --hots");
    assert.match(mistake(["plan"]).message, /--hosts FILE \(or - for standard input\) or --lab/);
    assert.equal(mistake(["plan"]).fix, "see: rootless-docker-net help plan");
    assert.match(mistake(["plan", "--hosts"]).message, /--hosts needs a value: --hosts FILE/);
    assert.match(mistake(["apply", "--lab", "--batch-size", "0"]).message, /--batch-size must be a whole number ≥ 1/);
    assert.match(mistake(["apply", "--lab", "--concurrency", "two"]).message, /--concurrency/);
    assert.match(mistake(["plan", "--lab", "--batch-size", "2"]).message, /--batch-size does not apply to plan/);
    const typo = mistake(["plan", "--host", "hosts.yaml"]);
    assert.equal(typo.message, "--host does not apply to plan");
    assert.equal(typo.fix, "did you mean --hosts? see: rootless-docker-net help plan");
    assert.equal(mistake(["plan", "--lab", "--canary", "1"]).fix, "see: rootless-docker-net help plan");
    assert.match(mistake(["plan", "--lab", "--password", "x"]).message, /unknown option --password/);
    assert.match(mistake(["plan", "--lab", "--json=yes"]).message, /--json takes no value/);
    assert.match(mistake(["plan", "--lab", "--limit", "a,,b"]).message, /--limit has an empty name/);
    assert.deepEqual(parseCliArgs(["plan", "--json", "--hots"]), { kind: "error", message: "unknown option --hots", fix: "did you mean --hosts? (see: rootless-docker-net help)", command: "plan", json: true });
  });

  it("parses plan --diff and script STEP --host NAME, and refuses a missing or unknown step and options of other commands", () => {
    assert.equal(options(["plan", "--lab", "--diff"]).diff, true);
    const script = options(["script", "apply", "--hosts", "h.yaml", "--host", "docker-1"]);
    assert.equal(script.command, "script");
    assert.equal(script.script, "apply");
    assert.equal(script.host, "docker-1");
    assert.equal(options(["script", "facts", "--lab"]).host, undefined);
    assert.match(mistake(["script", "--lab"]).message, /script needs the step: facts, apply or verify/);
    assert.deepEqual(mistake(["script", "verfy", "--lab"]).fix, 'did you mean "verify"? rootless-docker-net script facts|apply|verify --hosts FILE --host NAME');
    assert.match(mistake(["script", "facts", "extra", "--lab"]).message, /unexpected argument "extra"/);
    assert.match(mistake(["script", "facts", "--lab", "--limit", "a"]).message, /--limit does not apply to script/);
    assert.match(mistake(["apply", "--lab", "--diff"]).message, /--diff does not apply to apply/);
    assert.match(mistake(["script", "facts", "--lab", "--host", "a", "--host", "b"]).message, /--host is given twice/);
  });
});
