import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DEFAULT_CONCURRENCY, parseCliArgs } from "../../provider/cli/args";

function message(argv: string[]): string {
  const parsed = parseCliArgs(argv);
  assert.equal(parsed.ok, false);
  return parsed.ok ? "" : parsed.message;
}

describe("parseCliArgs", () => {
  it("parses a plan against a hosts file with defaults", () => {
    const parsed = parseCliArgs(["plan", "--hosts", "hosts.yaml", "--json"]);
    assert.ok(parsed.ok);
    assert.deepEqual(parsed.options, {
      command: "plan",
      hostsFile: "hosts.yaml",
      lab: false,
      json: true,
      concurrency: DEFAULT_CONCURRENCY,
      waves: { batchSize: undefined, maxUnavailable: undefined, canary: undefined },
    });
  });

  it("parses apply's wave options", () => {
    const parsed = parseCliArgs(["apply", "--lab", "--batch-size", "2", "--canary", "1", "--concurrency", "3"]);
    assert.ok(parsed.ok);
    assert.equal(parsed.options.lab, true);
    assert.equal(parsed.options.concurrency, 3);
    assert.deepEqual(parsed.options.waves, { batchSize: 2, maxUnavailable: undefined, canary: 1 });
  });

  it("refuses mistakes with a message naming them", () => {
    assert.match(message([]), /a command is required/);
    assert.match(message(["destroy", "--lab"]), /unknown command "destroy"/);
    assert.match(message(["plan"]), /--hosts FILE or --lab/);
    assert.match(message(["apply", "--lab", "--batch-size", "0"]), /--batch-size must be a whole number ≥ 1/);
    assert.match(message(["apply", "--lab", "--concurrency", "two"]), /--concurrency/);
    assert.match(message(["plan", "--lab", "--batch-size", "2"]), /apply only to apply/);
    assert.match(message(["plan", "--lab", "--password", "x"]), /password/);
  });
});
