/**
 * `rootless-docker-net --version` and `COMMAND --help` start as fast as Node itself (issue 12: within 150 ms, measured
 * by `npm run bench`) because they load only the argument parser. What a fresh CLI process has loaded is read from
 * its `require.cache` at exit, so a new top-level import of the engine, zod, ssh2, yaml or Pulumi fails here.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";

const CLI = join(__dirname, "..", "..", "provider", "cli", "main.js");
const HEAVY = /[\\/]node_modules[\\/](ssh2|zod|yaml|@pulumi[\\/][^\\/]+|@grpc[\\/][^\\/]+)[\\/]/;
/** All of ours these commands may load: the argument parser, its "did you mean", the version. */
const PARSER_MODULES = ["provider/cli/main.js", "provider/cli/args.js", "provider/core/suggest.js", "provider/version.js"];
const dir = mkdtempSync(join(tmpdir(), "rdn-startup-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const hook = join(dir, "loaded.js");
writeFileSync(hook, `process.on("exit", () => require("node:fs").writeFileSync(process.env.RDN_LOADED_FILE, JSON.stringify(Object.keys(require.cache))));\n`);

/** The packages (and our own modules) a fresh `rootless-docker-net ARGS` process had loaded when it exited. */
function loadedBy(args: string[]): { status: number | null; heavy: string[]; ours: string[] } {
  const out = join(dir, `${args.join("_").replace(/\W/g, "-")}.json`);
  const result = spawnSync(process.execPath, ["--require", hook, CLI, ...args], { env: { ...process.env, RDN_LOADED_FILE: out }, encoding: "utf8" });
  const files = JSON.parse(readFileSync(out, "utf8")) as string[];
  const heavy = [...new Set(files.map((file) => file.match(HEAVY)?.[1]).filter((name): name is string => name !== undefined))].sort();
  const ours = files.filter((file) => !file.includes("node_modules") && file.includes(`${join("dist", "provider")}`)).map((file) => file.slice(file.indexOf("provider")));
  return { status: result.status, heavy, ours };
}

for (const args of [["--version"], ["--version", "--json"], ["plan", "--help"], ["help", "apply"], ["verify", "--help"]]) {
  test(`rootless-docker-net ${args.join(" ")} loads no engine, zod, ssh2, yaml or Pulumi module`, () => {
    const { status, heavy, ours } = loadedBy(args);
    assert.equal(status, 0);
    assert.deepEqual(heavy, []);
    assert.deepEqual(ours.filter((file) => !PARSER_MODULES.includes(file.replace(/\\/g, "/"))), []);
  });
}

test("the check sees what a real command loads: validate reads the hosts file with yaml and checks it with zod", () => {
  const hosts = join(dir, "hosts.yaml");
  writeFileSync(hosts, "hosts:\n  - name: a\n    networkDriver: pasta\n    connection: { host: 127.0.0.1, user: dev, agentSocketPath: /nonexistent.sock }\n");
  const { heavy } = loadedBy(["validate", "--hosts", hosts]);
  assert.ok(heavy.includes("yaml") && heavy.includes("zod"), `loaded: ${heavy.join(", ")}`);
});
