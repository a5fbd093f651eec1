/**
 * Drives the `rootless-docker` resource plugin (plugin/pulumi-resource-rootless-docker, the executable the Pulumi
 * engine starts) over gRPC the way the engine does, with a real gRPC Engine service that receives its log messages.
 *
 *   const engine = await startEngineLog();
 *   const plugin = await startPlugin({ engineAddress: engine.address });
 *   await plugin.configure({ connection: {...} });
 *   const diff = await plugin.diff(id, olds, news);   // diff.detailedDiff.networkDriver.kind === "update"
 *   engine.messages   // [{ severity: "warning", urn, message }]
 *
 * Secrets go in marked as the engine marks them (`secret(value)`); replies come back with the markers kept.
 */
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { Empty } from "google-protobuf/google/protobuf/empty_pb";
import { Struct } from "google-protobuf/google/protobuf/struct_pb";
import { EngineService } from "@pulumi/pulumi/proto/engine_grpc_pb";
import { LogRequest, LogSeverity } from "@pulumi/pulumi/proto/engine_pb";
import { ResourceProviderClient } from "@pulumi/pulumi/proto/provider_grpc_pb";
import * as proto from "@pulumi/pulumi/proto/provider_pb";
import { killGroup, PROJECT_ROOT, spawnServing, unaryCaller } from "./provider-host";

export const PLUGIN_EXECUTABLE = join(PROJECT_ROOT, "plugin", "pulumi-resource-rootless-docker");
export const NETWORK_TYPE = "rootless-docker:index:Network";

type Properties = Record<string, unknown>;

const SIG_KEY = "4dabf18193072939515e22adb298388d";
const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";

/** A value marked secret, as the engine sends it to a provider that accepts secrets. */
export function secret(value: unknown): Properties {
  return { [SIG_KEY]: SECRET_SIG, value };
}

export function isSecret(value: unknown): value is { value: unknown } {
  return typeof value === "object" && value !== null && (value as Properties)[SIG_KEY] === SECRET_SIG;
}

export interface LogMessage {
  severity: "debug" | "info" | "warning" | "error";
  urn: string;
  message: string;
}

export interface EngineLog {
  address: string;
  messages: LogMessage[];
  stop(): Promise<void>;
}

/** A real gRPC server with Pulumi's Engine service: the plugin's Log calls land in `messages`. */
export async function startEngineLog(): Promise<EngineLog> {
  const messages: LogMessage[] = [];
  const severities = { [LogSeverity.DEBUG]: "debug", [LogSeverity.INFO]: "info", [LogSeverity.WARNING]: "warning", [LogSeverity.ERROR]: "error" } as const;
  const server = new grpc.Server();
  server.addService(EngineService as unknown as grpc.ServiceDefinition, {
    log: (call: grpc.ServerUnaryCall<LogRequest, Empty>, callback: grpc.sendUnaryData<Empty>) => {
      messages.push({ severity: severities[call.request.getSeverity()], urn: call.request.getUrn(), message: call.request.getMessage() });
      callback(null, new Empty());
    },
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))));
  return { address: `127.0.0.1:${port}`, messages, stop: () => new Promise((resolve) => server.tryShutdown(() => resolve())) };
}

export interface PropertyDiffReply {
  kind: "add" | "add-replace" | "delete" | "delete-replace" | "update" | "update-replace";
  inputDiff: boolean;
}

export interface PluginDiffReply {
  changes: "some" | "none" | "unknown";
  replaces: string[];
  deleteBeforeReplace: boolean;
  hasDetailedDiff: boolean;
  detailedDiff: Record<string, PropertyDiffReply>;
}

export interface PluginReadReply {
  id: string;
  properties: Properties;
  inputs: Properties | null;
  refreshBeforeUpdate: boolean;
}

export interface PluginHost {
  stderr(): string;
  urn(name?: string): string;
  getPluginInfo(): Promise<string>;
  getSchema(): Promise<Record<string, unknown>>;
  configure(args?: Properties): Promise<{ acceptSecrets: boolean; supportsPreview: boolean }>;
  check(olds: Properties, news: Properties): Promise<{ inputs: Properties; failures: { property: string; reason: string }[] }>;
  diff(id: string, olds: Properties, news: Properties): Promise<PluginDiffReply>;
  create(inputs: Properties, opts?: { preview?: boolean }): Promise<{ id: string; properties: Properties; refreshBeforeUpdate: boolean }>;
  read(id: string, properties: Properties, inputs?: Properties): Promise<PluginReadReply>;
  update(id: string, olds: Properties, news: Properties, opts?: { preview?: boolean }): Promise<{ properties: Properties }>;
  delete(id: string, properties: Properties): Promise<void>;
  stop(): Promise<void>;
}

export async function startPlugin(options: { engineAddress?: string; env?: Record<string, string> } = {}): Promise<PluginHost> {
  // As the engine starts a plugin: flags first, the engine's address last.
  const { child, port, stderr } = await spawnServing(PLUGIN_EXECUTABLE, ["--logtostderr", "-v=1", ...(options.engineAddress ? [options.engineAddress] : [])], options.env);
  const client = new ResourceProviderClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const urn = (name = "host") => `urn:pulumi:test::rootless-docker-test::${NETWORK_TYPE}::${name}`;
  const call = unaryCaller(client);
  const struct = (values: Properties) => Struct.fromJavaScript(values as never);
  const kinds = { [proto.PropertyDiff.Kind.ADD]: "add", [proto.PropertyDiff.Kind.ADD_REPLACE]: "add-replace", [proto.PropertyDiff.Kind.DELETE]: "delete", [proto.PropertyDiff.Kind.DELETE_REPLACE]: "delete-replace", [proto.PropertyDiff.Kind.UPDATE]: "update", [proto.PropertyDiff.Kind.UPDATE_REPLACE]: "update-replace" } as const;
  const changes = { [proto.DiffResponse.DiffChanges.DIFF_SOME]: "some", [proto.DiffResponse.DiffChanges.DIFF_NONE]: "none", [proto.DiffResponse.DiffChanges.DIFF_UNKNOWN]: "unknown" } as const;
  let stopped = false;

  return {
    stderr,
    urn,
    async getPluginInfo() {
      return (await call<Empty, { getVersion(): string }>("GetPluginInfo", client.getPluginInfo)(new Empty())).getVersion();
    },
    async getSchema() {
      const reply = await call<proto.GetSchemaRequest, proto.GetSchemaResponse>("GetSchema", client.getSchema)(new proto.GetSchemaRequest());
      return JSON.parse(reply.getSchema()) as Record<string, unknown>;
    },
    async configure(args = {}) {
      const request = new proto.ConfigureRequest().setArgs(struct(args)).setAcceptsecrets(true).setAcceptresources(true).setSendsOldInputs(true).setSendsOldInputsToDelete(true);
      const reply = await call<proto.ConfigureRequest, proto.ConfigureResponse>("Configure", client.configure)(request);
      return { acceptSecrets: reply.getAcceptsecrets(), supportsPreview: reply.getSupportspreview() };
    },
    async check(olds, news) {
      const reply = await call<proto.CheckRequest, proto.CheckResponse>("Check", client.check)(new proto.CheckRequest().setUrn(urn()).setOlds(struct(olds)).setNews(struct(news)));
      return { inputs: reply.getInputs()?.toJavaScript() ?? {}, failures: reply.getFailuresList().map((failure) => ({ property: failure.getProperty(), reason: failure.getReason() })) };
    },
    async diff(id, olds, news) {
      const reply = await call<proto.DiffRequest, proto.DiffResponse>("Diff", client.diff)(new proto.DiffRequest().setId(id).setUrn(urn()).setOlds(struct(olds)).setNews(struct(news)));
      const detailedDiff: Record<string, PropertyDiffReply> = {};
      reply.getDetaileddiffMap().forEach((value, key) => (detailedDiff[key] = { kind: kinds[value.getKind()], inputDiff: value.getInputdiff() }));
      return { changes: changes[reply.getChanges()], replaces: reply.getReplacesList(), deleteBeforeReplace: reply.getDeletebeforereplace(), hasDetailedDiff: reply.getHasdetaileddiff(), detailedDiff };
    },
    async create(inputs, opts = {}) {
      const reply = await call<proto.CreateRequest, proto.CreateResponse>("Create", client.create)(new proto.CreateRequest().setUrn(urn()).setProperties(struct(inputs)).setPreview(opts.preview ?? false));
      return { id: reply.getId(), properties: reply.getProperties()?.toJavaScript() ?? {}, refreshBeforeUpdate: reply.getRefreshBeforeUpdate() };
    },
    async read(id, properties, inputs) {
      const request = new proto.ReadRequest().setId(id).setUrn(urn()).setProperties(struct(properties));
      if (inputs) request.setInputs(struct(inputs));
      const reply = await call<proto.ReadRequest, proto.ReadResponse>("Read", client.read)(request);
      return { id: reply.getId(), properties: reply.getProperties()?.toJavaScript() ?? {}, inputs: reply.getInputs()?.toJavaScript() ?? null, refreshBeforeUpdate: reply.getRefreshBeforeUpdate() };
    },
    async update(id, olds, news, opts = {}) {
      const request = new proto.UpdateRequest().setId(id).setUrn(urn()).setOlds(struct(olds)).setNews(struct(news)).setPreview(opts.preview ?? false);
      const reply = await call<proto.UpdateRequest, proto.UpdateResponse>("Update", client.update)(request);
      return { properties: reply.getProperties()?.toJavaScript() ?? {} };
    },
    async delete(id, properties) {
      await call<proto.DeleteRequest, unknown>("Delete", client.delete)(new proto.DeleteRequest().setId(id).setUrn(urn()).setProperties(struct(properties)));
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      client.close();
      await killGroup(child);
    },
  };
}
