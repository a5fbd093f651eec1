/**
 * Drives the REAL Pulumi dynamic-provider host (`pulumi-resource-pulumi-nodejs`) over gRPC the way the engine does,
 * without the Pulumi CLI: the fidelity gate for Struct encoding, loading the serialized provider and error shapes.
 *
 *   const host = await startProviderHost({ env: { ROOTLESS_DOCKER_NET_TRACE: traceFile } });
 *   try {
 *     await host.configure();
 *     const { inputs, failures } = await host.check({}, args);
 *     const { id, properties } = await host.create(inputs);
 *   } finally {
 *     await host.stop();
 *   }
 *
 * Values go in and come out as plain JS (`Struct.fromJavaScript` / `toJavaScript`), with `__provider` added to
 * every property bag that lacks it. Secrets are passed plain: the host replies acceptSecrets=false, so the engine
 * strips secret markers before every call. A failed call rejects with a `ProviderHostCallError`.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import * as grpc from "@grpc/grpc-js";
import { Struct } from "google-protobuf/google/protobuf/struct_pb";
import { ResourceProviderClient } from "@pulumi/pulumi/proto/provider_grpc_pb";
import * as proto from "@pulumi/pulumi/proto/provider_pb";
import { serializeProvider } from "./serialize";

/** The project root: the host resolves `require`s of the serialized provider from its cwd. */
export const PROJECT_ROOT = join(__dirname, "..", "..", "..");

const HOST_SCRIPT = join("node_modules", "@pulumi", "pulumi", "pulumi-resource-pulumi-nodejs");
/** The host never dials the engine address it is given (see shared/notes/pulumi-without-cli.md). */
const UNUSED_ENGINE_ADDRESS = "127.0.0.1:1";
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 5_000;
/** What the engine puts in a URN's type part. */
export const RESOURCE_TYPE = "pulumi-nodejs:dynamic:RootlessDockerNetwork";

type Properties = Record<string, unknown>;

export interface ProviderHostOptions {
  /** Extra environment for the host process (e.g. ROOTLESS_DOCKER_NET_TRACE); added to this process's environment. */
  env?: Record<string, string>;
  /** The serialized provider (`__provider`); default: the resource's shim, serialized as `dynamic.Resource` does. */
  providerText?: string;
  /** Resource name used in URNs. */
  resourceName?: string;
  /** false = run as in this package's own checkout (the root Pulumi project), where the package is not installed. */
  asInstalled?: boolean;
}

export interface ConfigureReply {
  acceptSecrets: boolean;
  supportsPreview: boolean;
  acceptResources: boolean;
  acceptOutputs: boolean;
}

export interface CheckReply {
  inputs: Properties;
  failures: { property: string; reason: string }[];
}

export interface DiffReply {
  changes: "some" | "none" | "unknown";
  replaces: string[];
  deleteBeforeReplace: boolean;
}

export interface ReadReply {
  id: string;
  properties: Properties;
  /** null when the provider returned no inputs. */
  inputs: Properties | null;
}

/** A gRPC call the host failed: `details` is the provider's error message as the engine would show it. */
export class ProviderHostCallError extends Error {
  override readonly name = "ProviderHostCallError";
  constructor(
    readonly method: string,
    readonly code: grpc.status,
    readonly details: string,
  ) {
    super(details);
  }
}

export interface ProviderHost {
  /** The `__provider` text added to every property bag. */
  readonly providerText: string;
  readonly port: number;
  /** What the host printed on stderr so far (it logs the stack of every failed call). */
  stderr(): string;
  configure(): Promise<ConfigureReply>;
  check(olds: Properties, news: Properties): Promise<CheckReply>;
  diff(id: string, olds: Properties, news: Properties): Promise<DiffReply>;
  create(inputs: Properties, opts?: { preview?: boolean }): Promise<{ id: string; properties: Properties }>;
  read(id: string, properties: Properties, inputs?: Properties): Promise<ReadReply>;
  update(id: string, olds: Properties, news: Properties, opts?: { preview?: boolean }): Promise<{ properties: Properties }>;
  delete(id: string, properties: Properties): Promise<void>;
  /** Closes the client and kills the host's process group; safe to call twice. */
  stop(): Promise<void>;
}

export async function startProviderHost(options: ProviderHostOptions = {}): Promise<ProviderHost> {
  const providerText = options.providerText ?? (await serializeProvider()).text;
  const installed = options.asInstalled === false ? { env: {}, remove: () => undefined } : installedPackage();
  // The host is a `sh` wrapper that does not exec node: it gets its own process group, killed whole on stop.
  let served: ServingPlugin;
  try {
    served = await spawnServing("sh", [HOST_SCRIPT, UNUSED_ENGINE_ADDRESS], { ...installed.env, ...options.env });
  } catch (error) {
    installed.remove();
    throw error;
  }
  const { child, port, stderr } = served;
  const client = new ResourceProviderClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const call = unaryCaller(client);
  const urn = `urn:pulumi:test::pulumi-rootless-docker::${RESOURCE_TYPE}::${options.resourceName ?? "host"}`;
  const withProvider = (properties: Properties): Struct => Struct.fromJavaScript({ __provider: providerText, ...properties } as never);
  let stopped = false;

  return {
    providerText,
    port,
    stderr,

    async configure() {
      const request = new proto.ConfigureRequest();
      request.setArgs(Struct.fromJavaScript({}));
      // What the engine announces about itself; the reply says what the provider accepts.
      request.setAcceptsecrets(true);
      request.setAcceptresources(true);
      request.setSendsOldInputs(true);
      request.setSendsOldInputsToDelete(true);
      const reply = await call<proto.ConfigureRequest, proto.ConfigureResponse>("Configure", client.configure)(request);
      return {
        acceptSecrets: reply.getAcceptsecrets(),
        supportsPreview: reply.getSupportspreview(),
        acceptResources: reply.getAcceptresources(),
        acceptOutputs: reply.getAcceptoutputs(),
      };
    },

    async check(olds, news) {
      const request = new proto.CheckRequest();
      request.setUrn(urn);
      request.setOlds(Struct.fromJavaScript(olds as never));
      request.setNews(withProvider(news));
      const reply = await call<proto.CheckRequest, proto.CheckResponse>("Check", client.check)(request);
      return {
        inputs: reply.getInputs()?.toJavaScript() ?? {},
        failures: reply.getFailuresList().map((failure) => ({ property: failure.getProperty(), reason: failure.getReason() })),
      };
    },

    async diff(id, olds, news) {
      const request = new proto.DiffRequest();
      request.setId(id);
      request.setUrn(urn);
      request.setOlds(withProvider(olds));
      request.setNews(withProvider(news));
      const reply = await call<proto.DiffRequest, proto.DiffResponse>("Diff", client.diff)(request);
      const changes = { [proto.DiffResponse.DiffChanges.DIFF_SOME]: "some", [proto.DiffResponse.DiffChanges.DIFF_NONE]: "none", [proto.DiffResponse.DiffChanges.DIFF_UNKNOWN]: "unknown" } as const;
      return { changes: changes[reply.getChanges()], replaces: reply.getReplacesList(), deleteBeforeReplace: reply.getDeletebeforereplace() };
    },

    async create(inputs, opts = {}) {
      const request = new proto.CreateRequest();
      request.setUrn(urn);
      request.setProperties(withProvider(inputs));
      request.setPreview(opts.preview ?? false);
      const reply = await call<proto.CreateRequest, proto.CreateResponse>("Create", client.create)(request);
      return { id: reply.getId(), properties: reply.getProperties()?.toJavaScript() ?? {} };
    },

    async read(id, properties, inputs) {
      const request = new proto.ReadRequest();
      request.setId(id);
      request.setUrn(urn);
      request.setProperties(withProvider(properties));
      if (inputs) request.setInputs(withProvider(inputs));
      const reply = await call<proto.ReadRequest, proto.ReadResponse>("Read", client.read)(request);
      return { id: reply.getId(), properties: reply.getProperties()?.toJavaScript() ?? {}, inputs: reply.getInputs()?.toJavaScript() ?? null };
    },

    async update(id, olds, news, opts = {}) {
      const request = new proto.UpdateRequest();
      request.setId(id);
      request.setUrn(urn);
      request.setOlds(withProvider(olds));
      request.setNews(withProvider(news));
      request.setPreview(opts.preview ?? false);
      const reply = await call<proto.UpdateRequest, proto.UpdateResponse>("Update", client.update)(request);
      return { properties: reply.getProperties()?.toJavaScript() ?? {} };
    },

    async delete(id, properties) {
      const request = new proto.DeleteRequest();
      request.setId(id);
      request.setUrn(urn);
      request.setProperties(withProvider(properties));
      await call<proto.DeleteRequest, unknown>("Delete", client.delete)(request);
    },

    async stop() {
      if (stopped) return;
      stopped = true;
      client.close();
      await killGroup(child);
      installed.remove();
    },
  };
}

export interface ServingPlugin {
  child: ChildProcess;
  port: number;
  stderr: () => string;
}

/**
 * Starts a plugin as the engine does (cwd = project, own process group, so that a `sh` wrapper dies with its
 * child) and waits for the port it prints; kills it again if it prints none.
 */
export async function spawnServing(command: string, args: string[], env: Record<string, string> = {}): Promise<ServingPlugin> {
  const child = spawn(command, args, { cwd: PROJECT_ROOT, detached: true, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  try {
    return { child, port: await firstStdoutPort(child, () => stderr), stderr: () => stderr };
  } catch (error) {
    await killGroup(child);
    throw error;
  }
}

/** Promise-returning unary calls on a gRPC client; a failed call rejects with a ProviderHostCallError. */
export function unaryCaller(client: grpc.Client) {
  return <Request, Reply>(method: string, send: (request: Request, done: (error: grpc.ServiceError | null, reply: Reply) => void) => unknown) =>
    (request: Request): Promise<Reply> =>
      new Promise((resolve, reject) => {
        send.call(client, request, (error, reply) => (error ? reject(new ProviderHostCallError(method, error.code, error.details)) : resolve(reply)));
      });
}

/**
 * Makes `require("pulumi-rootless-docker/dynamic")` resolve as in a user's project, where the package is installed.
 * The serialized provider is loaded with an empty file name, so Node's self-reference (which needs the requiring
 * file's path) does not apply and this repository is not in its own node_modules: a NODE_PATH directory holding
 * a link to the project stands in for the installed package, without touching node_modules.
 */
export function installedPackage(): { env: { NODE_PATH: string }; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "rootless-docker-pkg-"));
  symlinkSync(PROJECT_ROOT, join(dir, "pulumi-rootless-docker"), "dir");
  return { env: { NODE_PATH: dir }, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** The host prints its gRPC port as the first stdout line; fails with the host's stderr if it exits or stalls first. */
async function firstStdoutPort(child: ChildProcess, stderr: () => string): Promise<number> {
  const lines = createInterface({ input: child.stdout! });
  let timer: NodeJS.Timeout | undefined;
  try {
    const line = await Promise.race([
      once(lines, "line").then(([text]) => String(text)),
      once(child, "exit").then(([code]) => Promise.reject(new Error(`the provider host exited (code ${String(code)}) before printing its port:\n${stderr()}`))),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`the provider host printed no port within ${START_TIMEOUT_MS} ms:\n${stderr()}`)), START_TIMEOUT_MS);
      }),
    ]);
    const port = Number(line.trim());
    if (!Number.isInteger(port) || port <= 0) throw new Error(`the provider host's first line is not a port: ${JSON.stringify(line)}\n${stderr()}`);
    return port;
  } finally {
    clearTimeout(timer);
    lines.close();
    // Keep draining: a host whose stdout pipe fills up would block.
    child.stdout!.resume();
  }
}

export async function killGroup(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, "exit");
  signalGroup(child, "SIGTERM");
  const timer = setTimeout(() => signalGroup(child, "SIGKILL"), STOP_TIMEOUT_MS);
  try {
    await exited;
  } finally {
    clearTimeout(timer);
  }
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, signal);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
  }
}
