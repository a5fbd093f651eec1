/** The README, read by the tests that check what it documents against the code and real runs. */
import { readFileSync } from "node:fs";
import { join } from "node:path";

export const README_PATH = join(__dirname, "..", "..", "..", "README.md");

/** The text under a heading (`## Diagnoses`), up to the next heading of the same or a higher level. */
export function readmeSection(heading: string, readme = readFileSync(README_PATH, "utf8")): string {
  const level = heading.match(/^#+/)![0].length;
  const lines = readme.split("\n");
  const start = lines.indexOf(heading);
  if (start < 0) throw new Error(`README.md has no heading "${heading}"`);
  const end = lines.findIndex((line, index) => index > start && /^#+ /.test(line) && line.match(/^#+/)![0].length <= level);
  return lines.slice(start + 1, end < 0 ? undefined : end).join("\n");
}
