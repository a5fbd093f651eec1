/**
 * Every public export of the package and every public member of it (fields, methods, nested object fields) has
 * TSDoc in the published `.d.ts`, so an editor shows what each input and output means. Walks the declarations
 * the package's entry points (`.` and `./dynamic`) export, as a user's compiler sees them.
 */
import assert from "node:assert/strict";
import { join, relative } from "node:path";
import { test } from "node:test";
import ts from "typescript";

const DIST = join(__dirname, "..", "..");
const ENTRIES = ["provider/index.d.ts", "provider/dynamic.d.ts"].map((file) => join(DIST, file));

const MEMBER_KINDS = new Set([
  ts.SyntaxKind.PropertySignature,
  ts.SyntaxKind.MethodSignature,
  ts.SyntaxKind.PropertyDeclaration,
  ts.SyntaxKind.MethodDeclaration,
  ts.SyntaxKind.GetAccessor,
]);

const documented = (node: ts.Node) => ts.getJSDocCommentsAndTags(node).length > 0;

function isPrivate(node: ts.Node): boolean {
  const modifiers = ts.canHaveModifiers(node) ? ts.getModifiers(node) ?? [] : [];
  if (modifiers.some((modifier) => modifier.kind === ts.SyntaxKind.PrivateKeyword || modifier.kind === ts.SyntaxKind.ProtectedKeyword)) return true;
  const name = (node as ts.NamedDeclaration).name;
  return name !== undefined && ts.isPrivateIdentifier(name);
}

/** `file:line name` of every undocumented export or member reachable from the entry points. */
export function undocumented(entries: readonly string[]): string[] {
  const program = ts.createProgram([...entries], { strict: true, skipLibCheck: true, types: [] });
  const checker = program.getTypeChecker();
  const seen = new Set<ts.Node>();
  const missing = new Set<string>();
  const where = (node: ts.Node, name: string) => {
    const file = node.getSourceFile();
    return `${relative(DIST, file.fileName)}:${file.getLineAndCharacterOfPosition(node.getStart()).line + 1} ${name}`;
  };
  const visitMembers = (node: ts.Node, owner: string) => {
    ts.forEachChild(node, (child) => {
      if (MEMBER_KINDS.has(child.kind) && !isPrivate(child)) {
        const name = `${owner}.${(child as ts.NamedDeclaration).name?.getText() ?? "?"}`;
        if (!documented(child)) missing.add(where(child, name));
        visitMembers(child, name);
      } else {
        visitMembers(child, owner);
      }
    });
  };
  for (const entry of entries) {
    const module = checker.getSymbolAtLocation(program.getSourceFile(entry)!)!;
    for (const exported of checker.getExportsOfModule(module)) {
      const symbol = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
      const declarations = (symbol.declarations ?? []).filter((declaration) => declaration.getSourceFile().fileName.startsWith(join(DIST, "provider")));
      // A variable's TSDoc sits on its statement; a value and a type of one name (`RootlessDockerNetwork`) need it once.
      const docNode = (declaration: ts.Declaration) => (ts.isVariableDeclaration(declaration) ? declaration.parent.parent : declaration);
      if (declarations.length > 0 && !declarations.some((declaration) => documented(docNode(declaration)))) missing.add(where(declarations[0]!, symbol.name));
      for (const declaration of declarations) {
        if (seen.has(declaration)) continue;
        seen.add(declaration);
        visitMembers(declaration, symbol.name);
      }
    }
  }
  return [...missing].sort();
}

test("every public export and member of the package's types has TSDoc", () => {
  assert.deepEqual(undocumented(ENTRIES), []);
});

test("the walk finds an undocumented member (the check can fail)", () => {
  // A type of ours whose members are documented except one: the walker must name exactly it.
  const probe = ts.sys.resolvePath(join(DIST, "provider", "__undocumented_probe__.d.ts"));
  ts.sys.writeFile(probe, "/** Probe. */\nexport interface Probe {\n  /** Documented. */\n  a: string;\n  b: {\n    /** Nested, documented. */\n    c: number;\n    d: boolean;\n  };\n}\n");
  try {
    assert.deepEqual(undocumented([probe]), ["provider/__undocumented_probe__.d.ts:5 Probe.b", "provider/__undocumented_probe__.d.ts:8 Probe.b.d"]);
  } finally {
    ts.sys.deleteFile!(probe);
  }
});
