/**
 * A language host for the `pulumi` CLI: the plugin the engine starts as `pulumi-language-nodejs`, `-python` or `-go`
 * to run a program. Pulumi's own hosts are Go modules the Go module proxy here does not serve, so the project has
 * this one: it does what the engine needs for `up`, `preview`, `refresh`, `destroy` and `import` (Run, plugin info, an
 * empty list of required plugins, handshake) and starts the program as Pulumi's host for that language does:
 *
 * - nodejs: the real `@pulumi/pulumi/cmd/run` resolved from the program's folder, options as its flags;
 * - python: the virtualenv's python (runtime option `virtualenv`, else python3 on PATH) running python-exec.py
 *   beside this file, which does what Pulumi's `pulumi-language-python-exec` does with the same arguments;
 * - go: `go build` of the program's folder, then the binary with the Go SDK's PULUMI_* variables.
 *
 * Everything else (display, diff, state, ordering) is the engine's own. The shim that starts it sets
 * RDN_PULUMI_RUNTIME. Started as `pulumi-language-RUNTIME [-flag=value …] ENGINE_ADDRESS`; prints its port.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, isAbsolute, join, resolve } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { Empty } from "google-protobuf/google/protobuf/empty_pb";
import type { Struct } from "google-protobuf/google/protobuf/struct_pb";
import { LanguageRuntimeService } from "@pulumi/pulumi/proto/language_grpc_pb";
import * as language from "@pulumi/pulumi/proto/language_pb";
import * as plugin from "@pulumi/pulumi/proto/plugin_pb";

/** What `@pulumi/pulumi/cmd/run` and python-exec.py exit with when they have already shown the error to the user. */
const ERROR_ALREADY_REPORTED = 32;

interface HostFlags {
  engineAddress: string;
  /** `runtime.options` of Pulumi.yaml, given by the engine as `-name=value` flags. */
  options: Record<string, string>;
}

function parseFlags(argv: string[]): HostFlags {
  const options: Record<string, string> = {};
  const positional: string[] = [];
  for (const arg of argv) {
    const flag = /^--?([A-Za-z][\w.-]*)(?:=(.*))?$/.exec(arg);
    if (flag) options[flag[1]!] = flag[2] ?? "true";
    else positional.push(arg);
  }
  return { engineAddress: positional.at(-1) ?? "", options };
}

function structOptions(options: Struct | undefined): Record<string, string> {
  const plain = options?.toJavaScript() ?? {};
  return Object.fromEntries(Object.entries(plain).map(([key, value]) => [key, String(value)]));
}

/** The stack's config, as every Pulumi SDK reads it from the environment. */
function configEnvironment(request: language.RunRequest): NodeJS.ProcessEnv {
  return {
    PULUMI_CONFIG: JSON.stringify(Object.fromEntries(request.getConfigMap().toArray())),
    PULUMI_CONFIG_SECRET_KEYS: JSON.stringify(request.getConfigsecretkeysList()),
  };
}

/** How to start one run of a program: a process, and what to do before and after it. */
interface Launch {
  argv: string[];
  env: NodeJS.ProcessEnv;
  cwd?: string;
  /** Runs before the program starts (Go's build); a string is the error the engine reports. */
  prepare?: () => Promise<string | undefined>;
  cleanup?: () => void;
}

interface RunContext {
  request: language.RunRequest;
  options: Record<string, string>;
  programDir: string;
  engineAddress: string;
}

type Runtime = (context: RunContext) => Launch | string;

/** `--name=value` for what is set, the way Pulumi's hosts pass the run's settings to their SDK's entry point. */
function settingFlags(context: RunContext, names: { dryRun: string; rootDirectory: string }): string[] {
  const { request } = context;
  const flags: string[] = [];
  const add = (name: string, value: string | number | undefined) => {
    if (value !== undefined && value !== "") flags.push(`--${name}=${value}`);
  };
  add("monitor", request.getMonitorAddress());
  add("engine", context.engineAddress);
  add("organization", request.getOrganization());
  add("project", request.getProject());
  add("stack", request.getStack());
  add("pwd", request.getPwd());
  add(names.rootDirectory, request.getInfo()?.getRootDirectory());
  add("parallel", request.getParallel());
  if (request.getDryrun()) flags.push(`--${names.dryRun}`);
  return flags;
}

const program = (request: language.RunRequest) => request.getProgram() || request.getInfo()?.getEntryPoint() || ".";

const nodejs: Runtime = (context) => {
  const { request, options, programDir } = context;
  let runScript: string;
  try {
    runScript = require.resolve("@pulumi/pulumi/cmd/run", { paths: [programDir] });
  } catch {
    return `@pulumi/pulumi is not installed for the program in ${programDir}: run npm install there`;
  }
  const env: NodeJS.ProcessEnv = { ...process.env, ...configEnvironment(request) };
  if (options.typescript !== undefined) env.PULUMI_NODEJS_TYPESCRIPT = options.typescript;
  if (options.tsconfig !== undefined) env.PULUMI_NODEJS_TSCONFIG_PATH = options.tsconfig;
  const nodeArgs = options.nodeargs ? options.nodeargs.split(/\s+/).filter(Boolean) : [];
  return {
    argv: [process.execPath, ...nodeArgs, runScript, ...settingFlags(context, { dryRun: "dry-run", rootDirectory: "root-directory" }), program(request), ...request.getArgsList()],
    env,
    cwd: request.getPwd() || undefined,
  };
};

const PYTHON_EXEC = join(__dirname, "..", "..", "..", "tools", "pulumi", "python-exec.py");

const python: Runtime = (context) => {
  const { request, options, programDir } = context;
  const env: NodeJS.ProcessEnv = { ...process.env, ...configEnvironment(request), PYTHONUNBUFFERED: "1" };
  let interpreter = "python3";
  if (options.virtualenv) {
    // As Pulumi's host: the virtualenv's bin first on PATH, VIRTUAL_ENV set, PYTHONHOME unset.
    const venv = resolve(programDir, options.virtualenv);
    interpreter = join(venv, "bin", "python");
    if (!existsSync(interpreter)) return `the virtualenv ${venv} (runtime option virtualenv) has no bin/python: create it with python3 -m venv ${venv} and pip install -r requirements.txt`;
    Object.assign(env, { VIRTUAL_ENV: venv, PULUMI_RUNTIME_VIRTUALENV: venv, PATH: `${join(venv, "bin")}${delimiter}${env.PATH ?? ""}` });
    delete env.PYTHONHOME;
  }
  const flags = settingFlags(context, { dryRun: "dry_run=true", rootDirectory: "root_directory" });
  return { argv: [interpreter, "-u", PYTHON_EXEC, ...flags, program(request), ...request.getArgsList()], env, cwd: request.getPwd() || undefined };
};

const go: Runtime = (context) => {
  const { request } = context;
  const dir = resolve(context.programDir, request.getProgram() || ".");
  const buildDir = mkdtempSync(join(tmpdir(), "pulumi-go-program-"));
  const binary = join(buildDir, "program");
  const info = request.getInfo();
  // The variables the Go SDK's pulumi.Run reads (sdk/v3/go/pulumi/run.go).
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...configEnvironment(request),
    PULUMI_MONITOR: request.getMonitorAddress(),
    PULUMI_ENGINE: context.engineAddress,
    PULUMI_PROJECT: request.getProject(),
    PULUMI_STACK: request.getStack(),
    PULUMI_ORGANIZATION: request.getOrganization(),
    PULUMI_ROOT_DIRECTORY: info?.getRootDirectory() ?? "",
    PULUMI_DRY_RUN: String(request.getDryrun()),
    PULUMI_PARALLEL: String(request.getParallel()),
  };
  return {
    argv: [binary, ...request.getArgsList()],
    env,
    cwd: request.getPwd() || undefined,
    prepare: () => runQuiet(["go", "build", "-o", binary, "."], dir).then((failure) => failure && `go build in ${dir} failed:\n${failure}`),
    cleanup: () => rmSync(buildDir, { recursive: true, force: true }),
  };
};

const RUNTIMES: Record<string, Runtime> = { nodejs, python, go };

/** Runs a build step; resolves to its output when it fails, undefined when it succeeds. */
function runQuiet(argv: string[], cwd: string): Promise<string | undefined> {
  return new Promise((done) => {
    const child = spawn(argv[0]!, argv.slice(1), { cwd, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    const keep = (chunk: Buffer) => (output += chunk.toString());
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    child.on("error", (error) => done(error.message));
    child.on("close", (code) => done(code === 0 ? undefined : output.trim() || `exit ${code}`));
  });
}

function startHost(flags: HostFlags): void {
  const children = new Set<ChildProcess>();

  const runtime = RUNTIMES[process.env.RDN_PULUMI_RUNTIME ?? "nodejs"];
  if (!runtime) throw new Error(`RDN_PULUMI_RUNTIME=${process.env.RDN_PULUMI_RUNTIME}: not one of ${Object.keys(RUNTIMES).join(", ")}`);

  const run = async (request: language.RunRequest): Promise<language.RunResponse> => {
    const options = { ...flags.options, ...structOptions(request.getInfo()?.getOptions()) };
    const dir = request.getInfo()?.getProgramDirectory() || request.getPwd() || process.cwd();
    const launch = runtime({ request, options, programDir: isAbsolute(dir) ? dir : join(process.cwd(), dir), engineAddress: flags.engineAddress });
    if (typeof launch === "string") return new language.RunResponse().setError(launch);
    try {
      const failure = await launch.prepare?.();
      if (failure) return new language.RunResponse().setError(failure);
      return await new Promise((resolve) => {
        const child = spawn(launch.argv[0]!, launch.argv.slice(1), { cwd: launch.cwd, env: launch.env, stdio: ["ignore", "inherit", "inherit"] });
        children.add(child);
        child.on("error", (error) => resolve(new language.RunResponse().setError(`could not start the program (${launch.argv[0]}): ${error.message}`)));
        child.on("close", (code, signal) => {
          children.delete(child);
          if (code === 0) resolve(new language.RunResponse());
          else if (code === ERROR_ALREADY_REPORTED) resolve(new language.RunResponse().setBail(true));
          else resolve(new language.RunResponse().setError(signal ? `Program was killed by ${signal}` : `Program exited with non-zero exit code: ${code}`));
        });
      });
    } finally {
      launch.cleanup?.();
    }
  };

  const unary =
    <Req, Res>(handler: (request: Req) => Res | Promise<Res>) =>
    (call: grpc.ServerUnaryCall<Req, Res>, callback: grpc.sendUnaryData<Res>) => {
      Promise.resolve()
        .then(() => handler(call.request))
        .then(
          (response) => callback(null, response),
          (error: Error) => callback({ code: grpc.status.INTERNAL, details: error.message }),
        );
    };

  const server = new grpc.Server();
  // Calls not listed get UNIMPLEMENTED, which the engine handles for the optional ones it tries.
  server.addService(LanguageRuntimeService, {
    handshake: unary(() => new language.LanguageHandshakeResponse()),
    getPluginInfo: unary(() => new plugin.PluginInfo().setVersion(require("@pulumi/pulumi/package.json").version as string)),
    // Resource plugins are found by the engine when a resource first needs one (and are installed up front by
    // `npm run pulumi`); with automatic plugin download off there is nothing to gain from listing them here.
    getRequiredPlugins: unary(() => new language.GetRequiredPluginsResponse()),
    getRequiredPackages: unary(() => new language.GetRequiredPackagesResponse()),
    run: unary(run),
    cancel: unary(() => {
      for (const child of children) child.kill("SIGTERM");
      return new Empty();
    }),
  } as unknown as grpc.UntypedServiceImplementation);
  server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, port) => {
    if (error) {
      process.stderr.write(`pulumi-language-nodejs: cannot listen on 127.0.0.1: ${error.message}\n`);
      process.exit(1);
    }
    process.stdout.write(`${port}\n`);
  });
}

if (require.main === module) startHost(parseFlags(process.argv.slice(2)));
