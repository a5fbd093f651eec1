/** The README's "Diagnoses" table lists exactly the diagnoses the code can give, each with what to do. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { DIAGNOSES } from "../../provider/core/types";
import { readmeSection } from "../helpers/readme";

test("the README's Diagnoses table names every diagnosis of DIAGNOSES once, in order, each with a meaning and a remedy", () => {
  const rows = readmeSection("## Diagnoses")
    .split("\n")
    .filter((line) => /^\| `/.test(line))
    .map((line) => line.split("|").slice(1, -1).map((cell) => cell.trim()));
  assert.deepEqual(rows.map(([code]) => code!.replace(/`/g, "")), [...DIAGNOSES]);
  for (const [code, meaning, remedy] of rows) {
    assert.ok(meaning && remedy, `${code}: the row says what it means and what to do`);
  }
});
