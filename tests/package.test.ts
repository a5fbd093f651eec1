/**
 * The package as a user installs it: `npm pack`, then `npm install` of the tarball in a fresh app outside the
 * repository (dependencies from the registry, through a local npm cache kept between runs), then the README's
 * ten-line program typechecked there, the package loaded, the Node API called and the installed CLI run.
 * One app serves every test of this file.
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";

const ROOT = resolve(__dirname, "../..");
const TSC = join(ROOT, "node_modules", "typescript", "bin", "tsc");
/** Kept between runs so that the install takes the registry's packages from disk. */
const NPM_CACHE = "/var/cache/pulumi-rootless-docker-npm";
const PULUMI_VERSION = (require(join(ROOT, "package.json")) as { devDependencies: Record<string, string> }).devDependencies["@pulumi/pulumi"];

let work: string;
let app: string;
let files: string[];

function run(command: string, args: string[], options: { cwd: string; input?: string; env?: NodeJS.ProcessEnv }) {
  return spawnSync(command, args, { cwd: options.cwd, input: options.input, env: options.env ?? process.env, encoding: "utf8", maxBuffer: 64 * 1024 * 1024, timeout: 10 * 60_000 });
}

/** The first ```ts block under the README's "Ten lines of program" heading. */
function readmeProgram(): string {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const section = readme.slice(readme.search(/^###? .*Ten lines of program/m));
  const block = /```ts\n([\s\S]*?)```/.exec(section);
  assert.ok(block, "the README has a ten-line program");
  return block[1];
}

before(() => {
  work = mkdtempSync(join(tmpdir(), "rdn-package-"));
  mkdirSync(NPM_CACHE, { recursive: true });
  // npm test has just built: pack what is there, without running the build again.
  const [packed] = JSON.parse(execFileSync("npm", ["pack", "--json", "--ignore-scripts", "--pack-destination", work], { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] })) as {
    filename: string;
    files: { path: string }[];
  }[];
  files = packed.files.map((file) => file.path);
  app = join(work, "app");
  mkdirSync(app);
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "first-hour", private: true, version: "1.0.0" }));
  const install = run("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", "--cache", NPM_CACHE, join(work, packed.filename), `@pulumi/pulumi@${PULUMI_VERSION}`, "@types/node@20"], { cwd: app });
  assert.equal(install.status, 0, `npm install of the tarball failed:\n${install.stdout}\n${install.stderr}`);
});

after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("the packed package, installed in a fresh app", { timeout: 15 * 60_000 }, () => {
  it("ships a LICENSE, no source maps, nothing of the lab, and says where it comes from", () => {
    assert.ok(files.includes("LICENSE"), files.join("\n"));
    assert.match(readFileSync(join(ROOT, "LICENSE"), "utf8"), /Apache License\s+Version 2\.0, January 2004/);
    assert.deepEqual(files.filter((file) => file.endsWith(".map")), [], "source maps of sources the package does not ship");
    assert.deepEqual(files.filter((file) => /(^|\/)lab(\/|\.|-)|cli-hosts|tests\//.test(file)), [], "lab or test files in the package");
    const manifest = JSON.parse(readFileSync(join(app, "node_modules", "pulumi-rootless-docker", "package.json"), "utf8"));
    assert.equal(manifest.license, "Apache-2.0");
    assert.match(manifest.repository.url, /github\.com\/pulumi-rootless-docker\/pulumi-rootless-docker/);
    assert.match(manifest.homepage, /^https:\/\/github\.com\//);
    assert.match(manifest.bugs.url, /\/issues$/);
  });

  it("the README's ten-line program typechecks against the installed package", () => {
    writeFileSync(join(app, "index.ts"), readmeProgram());
    writeFileSync(
      join(app, "tsconfig.json"),
      JSON.stringify({ compilerOptions: { strict: true, target: "ES2022", module: "commonjs", moduleResolution: "node", esModuleInterop: true, noEmit: true, types: ["node"] }, files: ["index.ts"] }),
    );
    const result = run(process.execPath, [TSC, "-p", "tsconfig.json"], { cwd: app });
    assert.equal(result.status, 0, `the README's program does not typecheck:\n${result.stdout}${result.stderr}`);
  });

  it("loads; the Node API works without loading @pulumi/pulumi, the resources load it when used", () => {
    const script = `
      const api = require("pulumi-rootless-docker");
      const pulumiLoaded = () => Object.keys(require.cache).some((path) => path.includes("/@pulumi/pulumi/"));
      const kinds = ["plan", "apply", "verify", "validate"].map((name) => typeof api[name]);
      const before = pulumiLoaded();
      const checked = api.validate({ defaults: { networkDriver: "pasta" }, hosts: [{ name: "a", connection: { host: "192.0.2.1", user: "dev", password: "x" } }] });
      const resource = typeof api.RootlessDockerNetwork;
      process.stdout.write(JSON.stringify({ kinds, before, checked: [checked.ok, checked.hosts], resource, after: pulumiLoaded(), version: api.VERSION }));`;
    const result = run(process.execPath, ["-e", script], { cwd: app });
    assert.equal(result.status, 0, result.stderr);
    const seen = JSON.parse(result.stdout);
    assert.deepEqual(seen.kinds, ["function", "function", "function", "function"]);
    assert.equal(seen.before, false, "requiring the package or calling validate loaded @pulumi/pulumi");
    assert.deepEqual(seen.checked, [true, [{ name: "a", host: "dev@192.0.2.1:22" }]]);
    assert.deepEqual([seen.resource, seen.after], ["function", true]);
    assert.equal(seen.version, JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).version);
  });

  it("installs the rootless-docker-net command: --version, validate from stdin, and --lab refused outside a checkout", () => {
    const bin = join(app, "node_modules", ".bin", "rootless-docker-net");
    const version = run(bin, ["--version"], { cwd: app });
    assert.equal(version.stdout, `rootless-docker-net ${JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).version}\n`, version.stderr);
    const hosts = `defaults: { networkDriver: pasta, connection: { user: dev } }\nhosts: [{ name: a, connection: { host: 192.0.2.1, hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl" } }]\n`;
    const validate = run(bin, ["validate", "--hosts", "-"], { cwd: app, input: hosts, env: { ...process.env, SSH_AUTH_SOCK: "/tmp/agent.sock" } });
    assert.equal(validate.status, 0, validate.stderr);
    assert.equal(validate.stdout, "validate: 1 host(s) valid: a (dev@192.0.2.1:22)\n");
    const lab = run(bin, ["plan", "--lab", "--json"], { cwd: app });
    assert.equal(lab.status, 1);
    assert.match(JSON.parse(lab.stdout).errors[0].message, /--lab: the lab is part of the repository checkout, not of the installed package/);
  });
});
