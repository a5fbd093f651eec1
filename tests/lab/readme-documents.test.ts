/**
 * The README's `--json` examples are what the CLI prints: each command (plan, apply, verify, validate, script, a
 * usage error, an input error) is run against a real lab host, and the example's shape (every field, at every
 * level, with its type) must equal the real document's. `RDN_UPDATE_README=1` rewrites the examples from these runs
 * (lab names and addresses replaced by documentation ones, long scripts cut). Also the progress the same runs print
 * on stderr: a line per host and per wave without a terminal (as in CI), a live line on one, nothing with --quiet.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { stringify } from "yaml";
import type { LabHost } from "../../lab/api";
import { README_PATH } from "../helpers/readme";

process.env.RDL_LAB = "rdlreadme";
// Loaded after RDL_LAB is set: the lab picks its instance from the environment.
const { labDown, labUp } = require("../../lab/api") as typeof import("../../lab/api");

const CLI = resolve(__dirname, "../../provider/cli/main.js");
const UPDATE = process.env.RDN_UPDATE_README === "1";
const EXAMPLE = /<!-- json: ([\w-]+) -->\n```json\n([\s\S]*?)```/g;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function cli(args: string[], options: { stdin?: string } = {}): Promise<Run> {
  return new Promise((done) => {
    const child = execFile(process.execPath, [CLI, ...args], { maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) =>
      done({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
    child.stdin!.end(options.stdin ?? "");
  });
}

/** The CLI on a pseudo-terminal (util-linux `script`), as a person runs it: what it wrote to the terminal. */
function cliOnTerminal(args: string[]): Promise<Run> {
  const command = [process.execPath, CLI, ...args].map((arg) => `'${arg.replace(/'/g, `'\\''`)}'`).join(" ");
  return new Promise((done) => {
    execFile("script", ["-q", "-e", "-c", `${command} >/dev/null`, "/dev/null"], { maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) =>
      done({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

type Shape = string | Shape[] | { [key: string]: Shape };

/** Every field at every level with its type; an array's elements merged into one shape, null matching any type. */
function shape(value: unknown): Shape {
  if (value === null) return "null";
  if (Array.isArray(value)) return value.length === 0 ? [] : [value.map(shape).reduce(merge)];
  if (typeof value === "object") return Object.fromEntries(Object.entries(value as object).sort(([a], [b]) => a.localeCompare(b)).map(([key, field]) => [key, shape(field)]));
  return typeof value;
}

function merge(a: Shape, b: Shape): Shape {
  if (a === "null") return b;
  if (b === "null" || JSON.stringify(a) === JSON.stringify(b)) return a;
  if (typeof a === "object" && typeof b === "object" && !Array.isArray(a) && !Array.isArray(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    return Object.fromEntries(keys.map((key) => [key, a[key] === undefined ? b[key]! : b[key] === undefined ? a[key]! : merge(a[key]!, b[key]!)]));
  }
  if (Array.isArray(a) && Array.isArray(b)) return a.length === 0 ? b : b.length === 0 ? a : [merge(a[0]!, b[0]!)];
  return `${String(a)}|${String(b)}`;
}

/** Where the README's shape and the real one differ, as `path: readme → real` lines (empty: the same fields and types). */
function differences(readme: Shape, real: Shape, path = "$"): string[] {
  if (readme === "null" || real === "null") return [];
  if (Array.isArray(readme) && Array.isArray(real)) return readme.length === 0 || real.length === 0 ? [] : differences(readme[0]!, real[0]!, `${path}[]`);
  if (typeof readme === "object" && typeof real === "object" && !Array.isArray(readme) && !Array.isArray(real)) {
    const keys = [...new Set([...Object.keys(readme), ...Object.keys(real)])].sort();
    return keys.flatMap((key) =>
      readme[key] === undefined ? [`${path}.${key}: missing in the README`] : real[key] === undefined ? [`${path}.${key}: not in the real output`] : differences(readme[key]!, real[key]!, `${path}.${key}`),
    );
  }
  return JSON.stringify(readme) === JSON.stringify(real) ? [] : [`${path}: ${JSON.stringify(readme)} → ${JSON.stringify(real)}`];
}

describe("the README's --json examples against real runs on a lab host", { timeout: 900_000 }, () => {
  let host: LabHost;
  let dir: string;
  let hostsFile: string;
  const real = new Map<string, Run>();

  /** The document as the README shows it: documentation names and addresses (host, target), a long script cut. */
  const forReadme = (document: Record<string, unknown>): string => {
    if (typeof document.script === "string") document.script = `${document.script.split("\n").slice(0, 3).join("\n")}\n…`;
    return `${JSON.stringify(document, null, 2)
      .replaceAll(`${dir}/`, "")
      .replaceAll(host.name, "docker-1")
      .replaceAll(host.address, "192.0.2.11")
      .replaceAll(host.target.ipv6, "fd12:3456:789a::53")}\n`;
  };

  before(async () => {
    // A fresh host: the plan example is a plan that finds differences.
    await labDown();
    [host] = await labUp({ hosts: 1, profile: "trixie" });
    dir = mkdtempSync(join(tmpdir(), "rdn-readme-"));
    hostsFile = join(dir, "hosts.yaml");
    writeFileSync(hostsFile, stringify({ defaults: { networkDriver: "pasta", ipv6: true, pastaIpv6Compat: true, verify: { required: true, timeoutSeconds: 30 } }, hosts: [] }));
    writeFileSync(join(dir, "typo.yaml"), stringify({ defaults: { netwrokDriver: "pasta" }, hosts: [{ name: "docker-1", connection: { host: "192.0.2.11", port: 70000, user: "dev", agentSocketPath: "/run/agent.sock" } }] }));
    const lab = ["--lab", "--hosts", hostsFile, "--json"];
    // In this order: the plan before the apply finds what to do; verify after it checks the applied host.
    real.set("validate", await cli(["validate", ...lab]));
    real.set("plan", await cli(["plan", ...lab]));
    real.set("apply", await cli(["apply", ...lab]));
    real.set("verify", await cli(["verify", ...lab]));
    real.set("script", await cli(["script", "facts", ...lab, "--host", host.name]));
    real.set("usage-error", await cli(["plan", "--hosts", hostsFile, "--bogus", "--json"]));
    real.set("input-error", await cli(["plan", "--hosts", join(dir, "typo.yaml"), "--json"]));
  });

  after(async () => {
    await labDown();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("each command exits as documented with one JSON document on stdout", () => {
    const expected: Record<string, number> = { validate: 0, plan: 2, apply: 0, verify: 0, script: 0, "usage-error": 1, "input-error": 1 };
    for (const [name, code] of Object.entries(expected)) {
      const run = real.get(name)!;
      assert.equal(run.code, code, `${name}: exit ${run.code}\n${run.stdout}\n${run.stderr}`);
      const document = JSON.parse(run.stdout) as { schemaVersion: number; tool: { version: string }; exitCode: number };
      assert.equal(document.schemaVersion, 1);
      assert.equal(document.exitCode, code);
    }
  });

  it("the README has one example per command, each with the real document's fields and types", () => {
    let readme = readFileSync(README_PATH, "utf8");
    if (UPDATE) {
      readme = readme.replace(EXAMPLE, (block, name: string) => (real.has(name) ? `<!-- json: ${name} -->\n\`\`\`json\n${forReadme(JSON.parse(real.get(name)!.stdout))}\`\`\`` : block));
      writeFileSync(README_PATH, readme);
    }
    const examples = new Map([...readme.matchAll(EXAMPLE)].map(([, name, text]) => [name!, text!]));
    assert.deepEqual([...examples.keys()].sort(), [...real.keys()].sort(), "one README example per command");
    for (const [name, run] of real) {
      assert.deepEqual(differences(shape(JSON.parse(examples.get(name)!)), shape(JSON.parse(run.stdout))), [], `the README's ${name} example (RDN_UPDATE_README=1 rewrites it)`);
    }
  });

  it("the comparison sees a field the README lacks", () => {
    const plan = JSON.parse(real.get("plan")!.stdout) as { summary: Record<string, unknown> };
    const withoutRestart = structuredClone(plan);
    delete withoutRestart.summary.restart;
    assert.deepEqual(differences(shape(withoutRestart), shape(plan)), ["$.summary.restart: missing in the README"]);
  });

  it("progress without a terminal (CI): a line per host and per wave on stderr, nothing else; none with --quiet", async () => {
    // stderr is a pipe here, as in a CI job.
    const applied = await cli(["apply", "--lab", "--hosts", hostsFile]);
    assert.equal(applied.code, 0, applied.stderr);
    const lines = applied.stderr.split("\n").filter((line) => line !== "");
    assert.deepEqual(
      lines.map((line) => line.replace(/^\[\d+\.\d+s\] /, "")),
      [`wave 1/1: ${host.name}`, `${host.name}: unchanged (1/1)`, "wave 1/1 done: 1 unchanged"],
      applied.stderr,
    );
    assert.ok(!applied.stderr.includes("\r"), "no live line without a terminal");
    const planned = await cli(["plan", "--lab", "--hosts", hostsFile]);
    assert.match(planned.stderr, new RegExp(`^\\[\\d+\\.\\d+s\\] ${host.name}: in-sync \\(1/1\\)\\n$`));
    const quiet = await cli(["plan", "--lab", "--hosts", hostsFile, "--quiet"]);
    assert.equal(quiet.code, 0);
    assert.equal(quiet.stderr, "");
  });

  it("progress on a terminal: the live line shows what is still running, then the host's line replaces it", async () => {
    const { code, stdout: terminal } = await cliOnTerminal(["verify", "--lab", "--hosts", hostsFile]);
    assert.equal(code, 0, terminal);
    assert.match(terminal, new RegExp(`\\r\\x1b\\[2K\\[\\d+\\.\\d+s\\] verifying: ${host.name}`));
    assert.match(terminal, new RegExp(`\\r\\x1b\\[2K\\[\\d+\\.\\d+s\\] ${host.name}: reachable \\(1/1\\)\\r?\\n`));
  });
});
