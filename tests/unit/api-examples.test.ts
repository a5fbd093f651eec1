/**
 * The Node API's examples compile: each `@example` of the published `dist/provider/api.d.ts` (what an editor shows)
 * and the README's "Node API" block, typechecked as a user's ES module against the built package, resolved by its
 * name through package.json's `exports` (so a renamed field or a wrong narrowing in an example fails here).
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import ts from "typescript";
import { readmeSection } from "../helpers/readme";

const ROOT = join(__dirname, "..", "..", "..");
const dir = mkdtempSync(join(tmpdir(), "rdn-api-examples-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** The code of every ```ts block in `text`, with a leading ` * ` of a doc comment removed. */
function tsBlocks(text: string): string[] {
  const unstarred = text.split("\n").map((line) => line.replace(/^\s*\* ?/, "")).join("\n");
  return [...unstarred.matchAll(/```ts\n([\s\S]*?)```/g)].map((match) => match[1]!);
}

/** The typecheck errors of each example, `name: message` (empty when all compile). */
function typecheck(examples: Record<string, string>): string[] {
  const files = Object.entries(examples).map(([name, code]) => {
    const file = join(dir, `${name}.ts`);
    writeFileSync(file, code);
    return file;
  });
  const program = ts.createProgram(files, {
    strict: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    types: ["node"],
    typeRoots: [join(ROOT, "node_modules", "@types")],
    // The package by its name, as installed: its package.json's exports choose the .d.ts.
    paths: { "pulumi-rootless-docker": [ROOT] },
    skipLibCheck: true,
  });
  return ts.getPreEmitDiagnostics(program).map((diagnostic) => {
    const where = diagnostic.file ? `${diagnostic.file.fileName.slice(dir.length + 1)}:${diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start!).line + 1}` : "";
    return `${where}: ${ts.flattenDiagnosticMessageText(diagnostic.messageText, "\n")}`;
  });
}

const declarations = readFileSync(join(ROOT, "dist", "provider", "api.d.ts"), "utf8");
const apiExamples = [...declarations.matchAll(/\/\*\*((?:(?!\*\/)[\s\S])*?@example(?:(?!\*\/)[\s\S])*?)\*\/\s*export declare function (\w+)/g)].flatMap(
  ([, comment, name]) => tsBlocks(comment!).map((code) => [name!, code] as const),
);

test("every Node API function has an @example in the published types", () => {
  assert.deepEqual(apiExamples.map(([name]) => name).sort(), ["apply", "plan", "script", "validate", "verify"]);
});

test("the @examples and the README's Node API example typecheck against the built package", () => {
  const readme = tsBlocks(readmeSection("## Node API (without Pulumi)"));
  assert.equal(readme.length, 1, "the README's Node API section has one ts example");
  assert.deepEqual(typecheck({ ...Object.fromEntries(apiExamples.map(([name, code]) => [`example-${name}`, code])), readme: readme[0]! }), []);
});

test("the check fails on an example that misuses the API", () => {
  const errors = typecheck({ wrong: 'import { plan } from "pulumi-rootless-docker";\nconst result = await plan("hosts.yaml");\nconsole.log(result.summary.restart);\n' });
  assert.equal(errors.length, 1, errors.join("\n"));
  assert.match(errors[0]!, /^wrong\.ts:3: Property 'summary' does not exist/);
});
