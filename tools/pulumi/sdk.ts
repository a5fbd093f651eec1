/**
 * `npm run sdk`: the Python and Go SDKs of the rootless-docker plugin, generated from plugin/schema.json into
 * sdk/python and sdk/go of the checkout (ignored by git: the schema is the one source, and a generated copy could
 * only go stale). tools/sdkgen runs pkg/v3's code generators, as `pulumi package add` does through the language
 * hosts the Go module proxy here does not serve.
 */
import { execFile } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { CHECKOUT, ensureSdkgen, goProgramEnvironment, pythonWheelhouse, ToolBuildError } from "./build";

export type SdkLanguage = "python" | "go";
export const SDK_LANGUAGES: readonly SdkLanguage[] = ["python", "go"];
export const SCHEMA = join(CHECKOUT, "plugin", "schema.json");

export function sdkDir(language: SdkLanguage): string {
  return join(CHECKOUT, "sdk", language);
}

/** Writes the SDKs (each folder replaced) and returns their folders. */
export async function generateSdks(languages: readonly SdkLanguage[] = SDK_LANGUAGES): Promise<Record<SdkLanguage, string>> {
  if (!existsSync(SCHEMA)) throw new ToolBuildError(`${SCHEMA} is missing\nfix: cd ${CHECKOUT} && npm run build`);
  const sdkgen = await ensureSdkgen();
  const dirs = {} as Record<SdkLanguage, string>;
  for (const language of languages) {
    const out = sdkDir(language);
    try {
      await promisify(execFile)(sdkgen, ["-schema", SCHEMA, "-language", language, "-out", out], { timeout: 120_000 });
    } catch (error) {
      throw new ToolBuildError(`sdkgen ${language} failed: ${(error as { stderr?: string }).stderr?.trim() || (error as Error).message}`);
    }
    dirs[language] = out;
  }
  return dirs;
}

/**
 * The virtualenv `venv` of a Python program (its Pulumi.yaml names it), made anew with the program's
 * requirements.txt installed offline from the wheelhouse `build.js --with python` keeps (the generated SDK by path).
 */
export async function pythonVirtualenv(programDir: string): Promise<string> {
  const venv = join(programDir, "venv");
  const step = async (argv: string[]) => {
    try {
      await promisify(execFile)(argv[0]!, argv.slice(1), { cwd: programDir, timeout: 600_000 });
    } catch (error) {
      throw new ToolBuildError(`${argv.join(" ")} (in ${programDir}) failed: ${(error as { stderr?: string }).stderr?.trim() || (error as Error).message}`);
    }
  };
  rmSync(venv, { recursive: true, force: true });
  await step(["python3", "-m", "venv", venv]);
  await step([join(venv, "bin", "pip"), "install", "--disable-pip-version-check", "--quiet", "--no-index", "--find-links", pythonWheelhouse(), "-r", "requirements.txt"]);
  return venv;
}

/** Compiles examples/go against the generated Go SDK, offline, into the shared Go build cache (so a later build of
 * the program by the language host is quick). */
export async function buildGoExample(): Promise<void> {
  const dir = join(CHECKOUT, "examples", "go");
  try {
    await promisify(execFile)("go", ["build", "-o", "/dev/null", "."], { cwd: dir, env: { ...process.env, ...goProgramEnvironment() }, timeout: 30 * 60_000 });
  } catch (error) {
    throw new ToolBuildError(`go build in ${dir} failed: ${(error as { stderr?: string }).stderr?.trim() || (error as Error).message}\nfix: node dist/tools/pulumi/build.js --with go (downloads its modules)`);
  }
}

async function main(args: string[]): Promise<void> {
  if (args.some((arg) => arg !== "--build-go-example")) throw new ToolBuildError(`usage: sdk.js [--build-go-example] (got ${args.join(" ")})`);
  const started = Date.now();
  const dirs = await generateSdks();
  process.stderr.write(`[sdk] ${Object.values(dirs).join(", ")} in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  if (args.length === 0) return;
  await buildGoExample();
  process.stderr.write(`[sdk] examples/go compiles against sdk/go (${((Date.now() - started) / 1000).toFixed(1)} s in all)\n`);
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    () => undefined,
    (error: Error) => {
      process.stderr.write(`[sdk] ${error.message}\n`);
      process.exit(1);
    },
  );
}
