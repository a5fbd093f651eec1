/**
 * Builds the real `pulumi` CLI from Go modules and caches it in a folder keyed by version, with the Go module and
 * build caches beside it, so a second run (and every later CI run on the machine) costs nothing.
 *
 *   node dist/tools/pulumi/build.js [--with yaml] [--with python] [--with go]
 *
 * - `pulumi`, at the version of the installed `@pulumi/pulumi`, through a throw-away wrapper module (pkg/v3 has
 *   `replace` directives, so `go install` refuses it).
 * - `pulumi-language-nodejs`, `-python`, `-go`: the project's own host (language-host.ts); Pulumi's Go hosts are not
 *   served by the module proxy. Shims next to `pulumi` run it, so the engine finds them as bundled plugins.
 * - `pulumi-resource-pulumi-nodejs` (dynamic providers): the script `@pulumi/pulumi` ships, copied next to `pulumi`.
 * - `pulumi-resource-command`, at the version of the installed `@pulumi/command`, when the proxy serves it.
 * - only when asked for: `pulumi-language-yaml`; for `python` and `go` the SDK generator (tools/sdkgen, pkg/v3's code
 *   generators at the CLI's version, which `pulumi package gen-sdk` would reach through the missing language hosts),
 *   for `python` the `pulumi` wheel at the SDK's version and its dependencies from PyPI (a wheelhouse programs'
 *   virtualenvs install from offline), for `go` the modules of examples/go.
 */
import { execFileSync, spawn } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { delimiter, dirname, join, resolve } from "node:path";

export const CHECKOUT = resolve(__dirname, "../../..");
/** Overridable so a cold build can be measured without touching the shared cache. */
export const TOOLS_CACHE = process.env.RDN_TOOLS_CACHE ?? "/var/cache/pulumi-rootless-docker-tools";
const GO_CACHES = { GOMODCACHE: join(TOOLS_CACHE, "go", "mod"), GOCACHE: join(TOOLS_CACHE, "go", "build") };

/** How Go programs are built at test time: the shared caches, this machine's Go, and no module download (the modules
 * come from the proxy only while tools are prepared: `--with go`). */
export function goProgramEnvironment(): Record<string, string> {
  return { ...GO_CACHES, GOTOOLCHAIN: "local", CGO_ENABLED: "0", GOPROXY: "off", GOFLAGS: "-mod=readonly", PATH: `${dirname(goBinary())}${delimiter}${process.env.PATH ?? ""}` };
}

/** Tag → commit of `github.com/pulumi/pulumi-command` (its provider module has no tags of its own). */
const COMMAND_COMMITS: Record<string, string> = {
  "1.2.1": "7f3eb6f3b77cd0fa3895ba437a695dd393f7dd25",
};
/** The newest pulumi-yaml the module proxy serves (no program of ours is written in YAML yet). */
const YAML_VERSION = "1.25.0";

export type Optional = "yaml" | "python" | "go";
const OPTIONAL: readonly Optional[] = ["yaml", "python", "go"];

export class ToolBuildError extends Error {
  override name = "ToolBuildError" as const;
}

const log = (line: string) => process.stderr.write(`[pulumi-cli] ${line}\n`);

function installedVersion(name: string): string | undefined {
  const manifest = join(CHECKOUT, "node_modules", name, "package.json");
  if (!existsSync(manifest)) return undefined;
  return String((JSON.parse(readFileSync(manifest, "utf8")) as { version: string }).version).replace(/^v/, "");
}

export function pulumiVersion(): string {
  const version = installedVersion("@pulumi/pulumi");
  if (!version) throw new ToolBuildError(`@pulumi/pulumi is not installed in ${CHECKOUT}\nfix: cd ${CHECKOUT} && npm ci`);
  return version;
}

/** Where the CLI and its bundled plugins live: the engine finds `pulumi-language-nodejs` next to `pulumi`. */
export function pulumiBinDir(version = pulumiVersion()): string {
  return join(TOOLS_CACHE, `pulumi-v${version}`, "bin");
}

export function commandVersion(): string | undefined {
  return installedVersion("@pulumi/command");
}

export function commandPluginPath(version: string): string {
  return join(TOOLS_CACHE, `command-v${version}`, "bin", "pulumi-resource-command");
}

function goBinary(): string {
  for (const dir of [...(process.env.PATH ?? "").split(delimiter), "/usr/local/go/bin"]) {
    if (dir && existsSync(join(dir, "go"))) return join(dir, "go");
  }
  throw new ToolBuildError(
    "Go is not installed (needed to build the pulumi CLI; Go >= 1.25)\n" +
      "fix: export PATH=/usr/local/go/bin:$PATH   (the machine's Go; Debian's golang-go is too old), then run again",
  );
}

interface Step {
  title: string;
  argv: string[];
  cwd?: string;
  env?: Record<string, string>;
}

/** Runs a step with its output streamed to stderr; returns the output for error messages. */
function runStep(step: Step): Promise<{ code: number; output: string }> {
  return new Promise((done, fail) => {
    const child = spawn(step.argv[0]!, step.argv.slice(1), {
      cwd: step.cwd,
      env: { ...process.env, ...GO_CACHES, GOTOOLCHAIN: "local", CGO_ENABLED: "0", GOFLAGS: "-mod=mod", ...step.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-20_000);
      process.stderr.write(chunk);
    };
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    child.on("error", fail);
    child.on("close", (code) => done({ code: code ?? 1, output }));
  });
}

async function timed<T>(title: string, work: () => Promise<T>): Promise<T> {
  const started = Date.now();
  log(`${title} …`);
  const result = await work();
  log(`${title}: done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return result;
}

async function mustRun(step: Step): Promise<void> {
  const result = await runStep(step);
  if (result.code === 0) return;
  const command = `cd ${step.cwd ?? process.cwd()} && ${Object.entries({ ...GO_CACHES, ...step.env }).map(([name, value]) => `${name}=${value}`).join(" ")} ${step.argv.join(" ")}`;
  const unreachable = /dial tcp|no such host|connection refused|i\/o timeout|TLS handshake/.test(result.output);
  const refused = /403 Forbidden|not available|404 Not Found|unknown revision/.test(result.output);
  const why = unreachable
    ? "the Go module proxy cannot be reached"
    : refused
      ? "the Go module proxy does not serve this module version"
      : `exit ${result.code}`;
  throw new ToolBuildError(`${step.title} failed: ${why}\ncommand: ${command}\n${result.output.trim().split("\n").slice(-8).join("\n")}`);
}

const ldVersion = (variable: string, version: string) => ["-trimpath", "-ldflags", `-s -w -X ${variable}=${version}`];

/** A module that requires pkg/v3 and sdk/v3 at one version (they must match) and repeats pkg's clipboard `replace`. */
function writeWrapperModule(dir: string, name: string, version: string): void {
  writeFileSync(
    join(dir, "go.mod"),
    `module ${name}\n\ngo 1.25\n\nrequire (\n\tgithub.com/pulumi/pulumi/pkg/v3 v${version}\n\tgithub.com/pulumi/pulumi/sdk/v3 v${version}\n)\n\n` +
      `replace github.com/atotto/clipboard => github.com/tgummerer/clipboard v0.0.0-20241001131231-d02d263e614e\n`,
  );
}

/** `pulumi` at the SDK's version. */
async function buildPulumi(version: string, binDir: string): Promise<void> {
  const go = goBinary();
  const source = join(dirname(binDir), "src");
  mkdirSync(source, { recursive: true });
  writeFileSync(join(source, "tools.go"), `//go:build tools\n\npackage tools\n\nimport _ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"\n`);
  if (!existsSync(join(source, "go.mod"))) {
    writeWrapperModule(source, "pulumi-rootless-docker/tools/pulumi", version);
    await timed("resolve the CLI's modules (go mod tidy)", () => mustRun({ title: "go mod tidy", argv: [go, "mod", "tidy"], cwd: source }));
  }
  const output = join(binDir, "pulumi.partial");
  await timed(`build pulumi v${version} (go build)`, () =>
    mustRun({
      title: `build pulumi v${version}`,
      argv: [go, "build", "-tags", "osusergo,grpcnotrace", ...ldVersion("github.com/pulumi/pulumi/sdk/v3/go/common/version.Version", `v${version}`), "-o", output, "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"],
      cwd: source,
    }),
  );
  renameSync(output, join(binDir, "pulumi"));
}

/** Bundled plugins next to `pulumi`: the engine takes those without looking at PATH (and without warning). */
function writeBundledPlugins(binDir: string): void {
  for (const runtime of ["nodejs", "python", "go"]) {
    const host = join(binDir, `pulumi-language-${runtime}`);
    writeFileSync(
      host,
      `#!/bin/sh\n# The project's language host, running ${runtime} programs; \`npm run pulumi\` names the checkout's copy.\n` +
        `RDN_PULUMI_RUNTIME=${runtime} exec node "\${RDN_PULUMI_LANGUAGE_HOST:?run pulumi through npm run pulumi in a checkout of pulumi-rootless-docker}" "$@"\n`,
    );
    chmodSync(host, 0o755);
  }
  const dynamic = join(binDir, "pulumi-resource-pulumi-nodejs");
  copyFileSync(join(CHECKOUT, "node_modules", "@pulumi", "pulumi", "pulumi-resource-pulumi-nodejs"), dynamic);
  chmodSync(dynamic, 0o755);
}

async function buildCommand(version: string): Promise<void> {
  const commit = COMMAND_COMMITS[version];
  if (!commit) {
    throw new ToolBuildError(`no commit known for @pulumi/command ${version}: add the commit of its tag v${version} to COMMAND_COMMITS in tools/pulumi/build.ts`);
  }
  const target = commandPluginPath(version);
  mkdirSync(dirname(target), { recursive: true });
  await timed(`build pulumi-resource-command ${version} (go install @${commit.slice(0, 12)})`, () =>
    mustRun({
      title: `build pulumi-resource-command ${version}`,
      argv: [goBinary(), "install", ...ldVersion("github.com/pulumi/pulumi-command/provider/pkg/version.Version", version), `github.com/pulumi/pulumi-command/provider/cmd/pulumi-resource-command@${commit}`],
      env: { GOBIN: dirname(target) },
    }),
  );
}

const SDKGEN_SOURCE = join(CHECKOUT, "tools", "sdkgen", "main.go");

/** The SDK generator's binary: keyed by the CLI's version and the generator's source, so an edit rebuilds it. */
export function sdkgenPath(version = pulumiVersion()): string {
  const source = createHash("sha256").update(readFileSync(SDKGEN_SOURCE)).digest("hex").slice(0, 12);
  return join(TOOLS_CACHE, `sdkgen-v${version}-${source}`, "bin", "sdkgen");
}

/** Builds tools/sdkgen against pkg/v3 at the CLI's version; the CLI's go.sum already lists every module it needs. */
export async function ensureSdkgen(version = pulumiVersion()): Promise<string> {
  const target = sdkgenPath(version);
  if (existsSync(target)) return target;
  const source = join(dirname(dirname(target)), "src");
  mkdirSync(source, { recursive: true });
  writeWrapperModule(source, "pulumi-rootless-docker/tools/sdkgen", version);
  const cliSums = join(dirname(pulumiBinDir(version)), "src", "go.sum");
  if (existsSync(cliSums)) copyFileSync(cliSums, join(source, "go.sum"));
  copyFileSync(SDKGEN_SOURCE, join(source, "main.go"));
  await timed(`build sdkgen (pkg/v3 v${version} codegen)`, () =>
    mustRun({ title: "build sdkgen", argv: [goBinary(), "build", "-trimpath", "-ldflags", "-s -w", "-o", `${target}.partial`, "."], cwd: source }),
  );
  renameSync(`${target}.partial`, target);
  return target;
}

function python(): string {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (dir && existsSync(join(dir, "python3"))) return join(dir, "python3");
  }
  throw new ToolBuildError("python3 is not installed (needed for Python programs; 3.9 or later)\nfix: apt-get install python3 python3-venv");
}

/** What a Python program's virtualenv installs offline: the `pulumi` package at the SDK's version, what the
 * generated SDK requires (parver, semver) and what pip builds the SDK's setup.py with. */
function pythonRequirements(version: string): string[] {
  return [`pulumi==${version}`, "parver", "semver", "setuptools", "wheel"];
}

/** The versions of everything in the wheelhouse, pinned. */
const PYTHON_CONSTRAINTS = join(CHECKOUT, "tools", "pulumi", "python-constraints.txt");

/** The wheelhouse, keyed by the pulumi version, the Python minor version (wheels such as grpcio are per Python) and
 * the pinned versions. */
export function pythonWheelhouse(version = pulumiVersion()): string {
  const minor = execFileSync(python(), ["-c", "import sys; print('%d.%d' % sys.version_info[:2])"], { encoding: "utf8" }).trim();
  const pins = createHash("sha256").update(readFileSync(PYTHON_CONSTRAINTS)).digest("hex").slice(0, 12);
  return join(TOOLS_CACHE, `python-pulumi-v${version}-py${minor}-${pins}`, "wheels");
}

async function ensureWheelhouse(version: string): Promise<void> {
  const target = pythonWheelhouse(version);
  if (existsSync(target)) return;
  const partial = `${target}.partial`;
  rmSync(partial, { recursive: true, force: true });
  await timed(`download the pulumi ${version} wheel and its dependencies (pip download)`, () =>
    mustRun({
      title: "pip download",
      argv: [python(), "-m", "pip", "download", "--disable-pip-version-check", "--quiet", "--dest", partial, "--constraint", PYTHON_CONSTRAINTS, ...pythonRequirements(version)],
    }),
  );
  renameSync(partial, target);
}

const GO_EXAMPLE = join(CHECKOUT, "examples", "go");

async function buildOptional(which: Optional, binDir: string, version: string): Promise<void> {
  if (which === "python" || which === "go") await ensureSdkgen(version);
  if (which === "python") return ensureWheelhouse(version);
  if (which === "go") {
    // The modules examples/go needs (sdk/v3 and its dependencies), so `go build` there later runs with GOPROXY=off.
    // Its go.mod replaces the SDK by ../../sdk/go, which go reads to resolve the graph: generate it first (a fresh
    // checkout has none). Loaded here because sdk.ts itself builds on this module.
    const { generateSdks } = await import("./sdk");
    await generateSdks(["go"]);
    return timed("download the modules of examples/go (go mod download)", () =>
      mustRun({ title: "go mod download", argv: [goBinary(), "mod", "download"], cwd: GO_EXAMPLE }),
    );
  }
  const target = join(TOOLS_CACHE, `yaml-v${YAML_VERSION}`, "bin", "pulumi-language-yaml");
  if (!existsSync(target)) {
    mkdirSync(dirname(target), { recursive: true });
    await timed(`build pulumi-language-yaml ${YAML_VERSION}`, () =>
      mustRun({
        title: `build pulumi-language-yaml ${YAML_VERSION}`,
        argv: [goBinary(), "install", "-trimpath", "-ldflags", "-s -w", `github.com/pulumi/pulumi-yaml/cmd/pulumi-language-yaml@v${YAML_VERSION}`],
        env: { GOBIN: dirname(target) },
      }),
    );
  }
  copyFileSync(target, join(binDir, "pulumi-language-yaml"));
  chmodSync(join(binDir, "pulumi-language-yaml"), 0o755);
}

export interface Tools {
  binDir: string;
  pulumi: string;
  /** Absent when @pulumi/command is not installed or its provider could not be built. */
  commandPlugin?: { version: string; path: string };
}

/**
 * Makes sure the CLI is built and cached, building what is missing. A missing `command` provider is reported
 * and skipped: programs without `@pulumi/command` do not need it.
 */
export async function ensureTools(optional: Optional[] = [], { verbose = true, buildCommandPlugin = true, commandNeeded = true } = {}): Promise<Tools> {
  const version = pulumiVersion();
  const binDir = pulumiBinDir(version);
  const pulumi = join(binDir, "pulumi");
  mkdirSync(binDir, { recursive: true });
  if (existsSync(pulumi)) {
    if (verbose) log(`pulumi v${version}: cached in ${binDir}`);
  }
  else await buildPulumi(version, binDir);
  writeBundledPlugins(binDir);
  for (const which of optional) await buildOptional(which, binDir, version);

  const tools: Tools = { binDir, pulumi };
  const command = commandVersion();
  if (command) {
    const path = commandPluginPath(command);
    if (!existsSync(path) && !buildCommandPlugin) {
      if (commandNeeded) log(`pulumi-resource-command ${command} is not built, programs using @pulumi/command will not run (npm run pulumi-cli says why)`);
    } else if (!existsSync(path)) {
      try {
        await buildCommand(command);
      } catch (error) {
        if (!(error instanceof ToolBuildError)) throw error;
        log(`pulumi-resource-command ${command} not available, programs using @pulumi/command will not run:\n${error.message}`);
      }
    } else if (verbose) log(`pulumi-resource-command ${command}: cached in ${dirname(path)}`);
    if (existsSync(path)) tools.commandPlugin = { version: command, path };
  }
  return tools;
}

async function main(argv: string[]): Promise<void> {
  const optional: Optional[] = [];
  for (let index = 0; index < argv.length; index++) {
    const value = argv[index] === "--with" ? argv[++index] : undefined;
    if (!OPTIONAL.includes(value as Optional)) throw new ToolBuildError(`usage: build.js [--with yaml] [--with python] [--with go] (got ${argv.join(" ")})`);
    optional.push(value as Optional);
  }
  const started = Date.now();
  const tools = await ensureTools(optional);
  log(`ready in ${((Date.now() - started) / 1000).toFixed(1)} s: ${tools.binDir}${tools.commandPlugin ? `, ${tools.commandPlugin.path}` : ""}`);
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((error: Error) => {
    process.stderr.write(`[pulumi-cli] ${error.message}\n`);
    process.exit(1);
  });
}
