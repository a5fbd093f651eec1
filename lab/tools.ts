import { accessSync, constants, copyFileSync, existsSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { run, runChecked } from "./exec";
import { LabError } from "./lab-error";

/**
 * Tools built from source for the lab, cached by version. The Go caches are shared with the other Go builds of this
 * project (the Pulumi CLI), so a module downloaded once is never fetched again.
 */
export const TOOLS_ROOT = "/var/cache/pulumi-rootless-docker-tools";
const GO_CACHES = { GOMODCACHE: join(TOOLS_ROOT, "go/mod"), GOCACHE: join(TOOLS_ROOT, "go/build") };

/** `2.3.4`, `v3.3.0`: RootlessKit ≥ 2 is a Go module whose path names the major version. */
export function parseRootlessKitVersion(given: string): string {
  const match = /^v?([23])\.(\d+)\.(\d+)$/.exec(given);
  if (!match) {
    throw new LabError(`unsupported RootlessKit version "${given}"`, "give a release of 2.x or 3.x, e.g. 2.3.4 or 3.3.0 (`go list -m -versions github.com/rootless-containers/rootlesskit/v3`)", {
      host: "machine",
      step: "build rootlesskit",
    });
  }
  return `${match[1]}.${match[2]}.${match[3]}`;
}


/** `go` on PATH, else where the upstream tarball puts it (not on root's PATH on this kind of machine). */
function findGo(): string {
  const candidates = [...(process.env.PATH ?? "").split(":").filter(Boolean).map((dir) => join(dir, "go")), "/usr/local/go/bin/go"];
  const found = candidates.find(isExecutable);
  if (found) return found;
  throw new LabError("no Go toolchain", "install Go ≥ 1.23 (https://go.dev/dl/ into /usr/local/go): RootlessKit ≥ 2.3 is built from the Go module proxy", {
    host: "machine",
    step: "build rootlesskit",
  });
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The folder holding static `rootlesskit` and `rootlessctl` of `version`, built with `go install` from the module proxy
 * the first time.
 */
export async function ensureRootlessKit(version: string, log: (line: string) => void): Promise<string> {
  const module = `github.com/rootless-containers/rootlesskit/v${version.split(".")[0]}`;
  return goInstalled({ name: `rootlesskit-v${version}`, packages: [`${module}/cmd/rootlesskit@v${version}`, `${module}/cmd/rootlessctl@v${version}`], binaries: ["rootlesskit", "rootlessctl"], version }, log);
}

/**
 * `go install` of `packages` into TOOLS_ROOT/NAME, once: the build goes to a temporary folder renamed at the end, so an
 * interrupted build is never used; the first binary's `--version` must name `version`.
 */
async function goInstalled(build: { name: string; packages: string[]; binaries: string[]; version: string; ldflags?: string }, log: (line: string) => void): Promise<string> {
  const finalDir = join(TOOLS_ROOT, build.name);
  if (build.binaries.every((binary) => existsSync(join(finalDir, binary)))) return finalDir;
  const go = findGo();
  const buildDir = join(TOOLS_ROOT, `.build-${build.name}-${process.pid}`);
  mkdirSync(buildDir, { recursive: true });
  const started = Date.now();
  const step = `build ${build.name}`;
  log(`${build.name}: building ${finalDir} (go install from the module proxy)`);
  try {
    await runChecked(["nice", go, "install", ...(build.ldflags ? ["-ldflags", build.ldflags] : []), ...build.packages], "machine", step, {
      timeoutMs: 30 * 60_000,
      // GOTOOLCHAIN=local: never download another toolchain behind our back; the build fails if Go is too old.
      env: { ...process.env, ...GO_CACHES, CGO_ENABLED: "0", GOBIN: buildDir, GOFLAGS: "-trimpath", GOTOOLCHAIN: "local" },
    });
    const reported = await run([join(buildDir, build.binaries[0]), "--version"]);
    if (!reported.stdout.includes(build.version)) throw new LabError(`the built ${build.binaries[0]} reports "${reported.stdout.trim()}"`, "", { host: "machine", step });
    rmSync(finalDir, { recursive: true, force: true });
    renameSync(buildDir, finalDir);
  } catch (error) {
    rmSync(buildDir, { recursive: true, force: true });
    throw error;
  }
  log(`${build.name}: built in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return finalDir;
}

/** moby's module whose contrib/dockerd-rootless.sh is Docker 29.5's and later (`go list -m -versions github.com/moby/moby/v2`). */
const MOBY_MODULE = "github.com/moby/moby/v2";

/** `v2.0.0-beta.24`: a version of MOBY_MODULE. */
export function parseMobyVersion(given: string): string {
  if (!/^v2\.\d+\.\d+(-[0-9A-Za-z.]+)?$/.test(given)) {
    throw new LabError(`unsupported moby version "${given}"`, `give a version of ${MOBY_MODULE}, e.g. v2.0.0-beta.24 (go list -m -versions ${MOBY_MODULE})`, { host: "machine", step: "fetch dockerd-rootless.sh" });
  }
  return given;
}

/**
 * moby's `contrib/dockerd-rootless.sh` at `version` of MOBY_MODULE, fetched once with `go mod download` (the module
 * proxy, into the shared Go module cache) and kept as a file under TOOLS_ROOT keyed by version. Returns its path.
 */
export async function ensureRootlessScript(version: string, log: (line: string) => void): Promise<string> {
  const finalDir = join(TOOLS_ROOT, `dockerd-rootless-moby-${version}`);
  const finalPath = join(finalDir, "dockerd-rootless.sh");
  if (existsSync(finalPath)) return finalPath;
  const go = findGo();
  log(`dockerd-rootless.sh of ${MOBY_MODULE}@${version}: fetching (go mod download from the module proxy)`);
  const downloaded = await runChecked(["nice", go, "mod", "download", "-json", `${MOBY_MODULE}@${version}`], "machine", `fetch dockerd-rootless.sh ${version}`, {
    timeoutMs: 30 * 60_000,
    env: { ...process.env, ...GO_CACHES, GOTOOLCHAIN: "local", GOFLAGS: "-modcacherw" },
  });
  const moduleDir = (JSON.parse(downloaded.stdout) as { Dir?: string }).Dir;
  if (moduleDir === undefined) throw new LabError(`go mod download named no directory for ${MOBY_MODULE}@${version}`, "", { host: "machine", step: `fetch dockerd-rootless.sh ${version}` });
  // A temporary file renamed at the end: an interrupted copy is never used.
  mkdirSync(finalDir, { recursive: true });
  copyFileSync(join(moduleDir, "contrib/dockerd-rootless.sh"), `${finalPath}.${process.pid}`);
  renameSync(`${finalPath}.${process.pid}`, finalPath);
  return finalPath;
}

/**
 * moby's own `dockerd` and `docker-proxy` of `version` of MOBY_MODULE (Docker 29.5+'s daemon, which can run in
 * RootlessKit's detached network namespace), built once from the module proxy, reporting that version.
 */
export async function ensureMobyDockerd(version: string, log: (line: string) => void): Promise<string> {
  return goInstalled(
    {
      name: `moby-dockerd-${version}`,
      packages: [`${MOBY_MODULE}/cmd/dockerd@${version}`, `${MOBY_MODULE}/cmd/docker-proxy@${version}`],
      binaries: ["dockerd", "docker-proxy"],
      version,
      ldflags: `-X ${MOBY_MODULE}/dockerversion.Version=${version}`,
    },
    log,
  );
}
