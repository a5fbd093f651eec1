import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

/** The pure core must run anywhere (tests, previews, the CLI's plan) without network, processes or files. */
const CORE = join(__dirname, "../../../provider/core");
const FORBIDDEN = /^(ssh2|@pulumi\/.*|(node:)?(child_process|net|fs|fs\/promises|dgram|http|https|http2|tls|dns))$/;

function importsOf(source: string): string[] {
  const pattern = /\bfrom\s+["']([^"']+)["']|\brequire\(\s*["']([^"']+)["']\s*\)|\bimport\(\s*["']([^"']+)["']\s*\)|^\s*import\s+["']([^"']+)["']/gm;
  return [...source.matchAll(pattern)].map((match) => match[1] ?? match[2] ?? match[3] ?? match[4]);
}

test("the import scanner sees every import form", () => {
  const sample = `import { a } from "ssh2";\nconst b = require("node:fs");\nawait import("@pulumi/pulumi");\nimport "net";\nexport * from "./x";`;
  assert.deepEqual(importsOf(sample), ["ssh2", "node:fs", "@pulumi/pulumi", "net", "./x"]);
});

test("provider/core imports neither ssh2, @pulumi/*, nor node I/O modules", () => {
  const files = readdirSync(CORE).filter((name) => name.endsWith(".ts"));
  assert.ok(files.length >= 4, `found the core sources in ${CORE}`);
  const offenders = files.flatMap((name) =>
    importsOf(readFileSync(join(CORE, name), "utf8"))
      .filter((specifier) => FORBIDDEN.test(specifier))
      .map((specifier) => `${name} imports ${specifier}`),
  );
  assert.deepEqual(offenders, []);
});
