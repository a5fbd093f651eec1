/**
 * Every example and the top-level program typecheck against the package as users get it: the tarball of
 * `npm pack` (only the published files), unpacked next to the project's node_modules so its own
 * dependencies resolve offline. Catches published types that reference unpublished files, and examples
 * that drifted from the API.
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { before, describe, it } from "node:test";
import { packCheckout } from "./helpers/fresh-app";

const ROOT = resolve(__dirname, "../..");
const WORK = join(ROOT, "dist", "examples-typecheck");
const PACKAGE_DIR = join(WORK, "node_modules", "pulumi-rootless-docker");
const TSC = join(ROOT, "node_modules", "typescript", "bin", "tsc");

const projects = [
  // Node.js programs only: examples/yaml, python and go are run by the real CLI in tests/lab/plugin-{yaml,python,go}.test.ts.
  ...readdirSync(join(ROOT, "examples")).filter((name) => existsSync(join(ROOT, "examples", name, "index.ts"))).map((name) => ({ name: `examples/${name}`, dir: join(ROOT, "examples", name), tsconfig: join(ROOT, "examples", name, "tsconfig.json") })),
  { name: "program (top-level Pulumi.yaml)", dir: join(ROOT, "program"), tsconfig: join(ROOT, "tsconfig.json") },
];

before(() => {
  rmSync(WORK, { recursive: true, force: true });
  mkdirSync(PACKAGE_DIR, { recursive: true });
  execFileSync("tar", ["-xzf", packCheckout(WORK), "-C", PACKAGE_DIR, "--strip-components=1"]);
});

describe("examples typecheck against the packed package", () => {
  it("finds the three examples", () => {
    assert.deepEqual(projects.map((project) => project.name).slice(0, 3).sort(), ["examples/ci-drift", "examples/fleet", "examples/single-host"]);
  });

  for (const project of projects) {
    it(project.name, () => {
      const config = join(WORK, `${project.name.replace(/[^a-z0-9-]+/gi, "_")}.tsconfig.json`);
      writeFileSync(
        config,
        JSON.stringify({
          extends: project.tsconfig,
          compilerOptions: { noEmit: true, incremental: false, baseUrl: ROOT, paths: { "pulumi-rootless-docker": [PACKAGE_DIR] } },
          files: [join(project.dir, "index.ts")],
          include: [],
        }),
      );
      const result = spawnSync(process.execPath, [TSC, "-p", config], { encoding: "utf8" });
      assert.equal(result.status, 0, `${project.name} does not typecheck:\n${result.stdout}${result.stderr}`);
    });
  }
});
