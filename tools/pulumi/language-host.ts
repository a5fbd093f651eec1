/**
 * A Node.js language host for the `pulumi` CLI: the plugin the engine starts as `pulumi-language-nodejs` to run a
 * program. Pulumi's own host is a Go module the Go module proxy here does not serve, so the project has this one:
 * it does what the engine needs for `up`, `preview`, `refresh` and `destroy` (Run, plugin info, an empty list of
 * required plugins, handshake) and runs the program with the real `@pulumi/pulumi/cmd/run` resolved from the
 * program's folder, as Pulumi's host does. Everything else (display, diff, state, ordering) is the engine's own.
 *
 * Started by the engine as `pulumi-language-nodejs [-flag=value …] ENGINE_ADDRESS`; prints the port it listens on.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { isAbsolute, join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { Empty } from "google-protobuf/google/protobuf/empty_pb";
import type { Struct } from "google-protobuf/google/protobuf/struct_pb";
import { LanguageRuntimeService } from "@pulumi/pulumi/proto/language_grpc_pb";
import * as language from "@pulumi/pulumi/proto/language_pb";
import * as plugin from "@pulumi/pulumi/proto/plugin_pb";

/** What `@pulumi/pulumi/cmd/run` exits with when it has already shown the error to the user. */
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

/** The environment `@pulumi/pulumi/cmd/run` reads its options and the stack config from. */
function programEnvironment(request: language.RunRequest, options: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  env.PULUMI_CONFIG = JSON.stringify(Object.fromEntries(request.getConfigMap().toArray()));
  env.PULUMI_CONFIG_SECRET_KEYS = JSON.stringify(request.getConfigsecretkeysList());
  if (options.typescript !== undefined) env.PULUMI_NODEJS_TYPESCRIPT = options.typescript;
  if (options.tsconfig !== undefined) env.PULUMI_NODEJS_TSCONFIG_PATH = options.tsconfig;
  return env;
}

function runArguments(request: language.RunRequest, runScript: string, engineAddress: string, options: Record<string, string>): string[] {
  const info = request.getInfo();
  const args = options.nodeargs ? options.nodeargs.split(/\s+/).filter(Boolean) : [];
  args.push(runScript);
  const add = (name: string, value: string | number | undefined) => {
    if (value !== undefined && value !== "") args.push(`--${name}=${value}`);
  };
  add("monitor", request.getMonitorAddress());
  add("engine", engineAddress);
  add("organization", request.getOrganization());
  add("project", request.getProject());
  add("stack", request.getStack());
  add("pwd", request.getPwd());
  add("root-directory", info?.getRootDirectory());
  add("parallel", request.getParallel());
  if (request.getDryrun()) args.push("--dry-run");
  args.push(request.getProgram() || info?.getEntryPoint() || ".", ...request.getArgsList());
  return args;
}

function startHost(flags: HostFlags): void {
  const children = new Set<ChildProcess>();

  const run = (request: language.RunRequest): Promise<language.RunResponse> => {
    const options = { ...flags.options, ...structOptions(request.getInfo()?.getOptions()) };
    const programDir = request.getInfo()?.getProgramDirectory() || request.getPwd() || process.cwd();
    let runScript: string;
    try {
      runScript = require.resolve("@pulumi/pulumi/cmd/run", { paths: [isAbsolute(programDir) ? programDir : join(process.cwd(), programDir)] });
    } catch {
      return Promise.resolve(new language.RunResponse().setError(`@pulumi/pulumi is not installed for the program in ${programDir}: run npm install there`));
    }
    return new Promise((resolve) => {
      const child = spawn(process.execPath, runArguments(request, runScript, flags.engineAddress, options), {
        cwd: request.getPwd() || undefined,
        env: programEnvironment(request, options),
        stdio: ["ignore", "inherit", "inherit"],
      });
      children.add(child);
      child.on("error", (error) => resolve(new language.RunResponse().setError(`could not start node for the program: ${error.message}`)));
      child.on("close", (code, signal) => {
        children.delete(child);
        if (code === 0) resolve(new language.RunResponse());
        else if (code === ERROR_ALREADY_REPORTED) resolve(new language.RunResponse().setBail(true));
        else resolve(new language.RunResponse().setError(signal ? `Program was killed by ${signal}` : `Program exited with non-zero exit code: ${code}`));
      });
    });
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
