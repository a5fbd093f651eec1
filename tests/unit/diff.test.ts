/**
 * The plan's unified diffs are what `diff -u` would print and what GNU `patch` applies: patching the "before" text
 * with them gives the "after" text byte for byte (CRLF lines and a last line without a newline included).
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { unifiedDiff } from "../../provider/core/diff";

const CASES: [string, string | null, string | null][] = [
  ["new file", null, "[Service]\nEnvironment=A=1\n"],
  ["removed file", "[Service]\nEnvironment=A=1\n", null],
  ["one line changed among many", Array.from({ length: 20 }, (_, i) => `line ${i}\n`).join(""), Array.from({ length: 20 }, (_, i) => (i === 9 ? "changed\n" : `line ${i}\n`)).join("")],
  ["two distant changes: two hunks", Array.from({ length: 30 }, (_, i) => `l${i}\n`).join(""), Array.from({ length: 30 }, (_, i) => (i === 2 || i === 25 ? `x${i}\n` : `l${i}\n`)).join("")],
  ["no newline at the end, then one", "[Service]\nEnvironment=A=1", "[Service]\nEnvironment=A=1\nEnvironment=B=2\n"],
  ["CRLF kept", "[Service]\r\nEnvironment=A=1\r\n", "[Service]\r\nEnvironment=A=2\r\n"],
  ["empty to content", "", "a\n"],
];

describe("unifiedDiff", () => {
  it("is empty when nothing changes", () => {
    assert.equal(unifiedDiff("/f", "a\n", "a\n"), "");
  });

  it("names the absent side /dev/null and counts as diff -u does", () => {
    assert.equal(unifiedDiff("/f", null, "a\nb\n"), "--- /dev/null\n+++ /f\n@@ -0,0 +1,2 @@\n+a\n+b\n");
    assert.equal(unifiedDiff("/f", "a\n", "b\n"), "--- /f\n+++ /f\n@@ -1 +1 @@\n-a\n+b\n");
  });

  for (const [name, before, after] of CASES) {
    it(`GNU patch turns before into after: ${name}`, () => {
      const dir = mkdtempSync(join(tmpdir(), "rdn-diff-"));
      try {
        const file = join(dir, "file");
        writeFileSync(file, before ?? "");
        writeFileSync(join(dir, "patch"), unifiedDiff(file, before, after));
        // --binary: no CR stripping; -E would remove the emptied file, which is not what we compare.
        execFileSync("patch", ["--binary", "--quiet", "--no-backup-if-mismatch", file, join(dir, "patch")]);
        // A diff to /dev/null makes patch delete the file.
        assert.equal(existsSync(file) ? readFileSync(file, "utf8") : null, after);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
