/**
 * The `rootless-docker` resource provider plugin: Pulumi's ResourceProvider gRPC service over the same provider
 * methods as the dynamic `RootlessDockerNetwork` (../dynamic.ts) and the same engine, for programs in every
 * language. What the dynamic-provider host cannot do is added here: a detailed diff per property (against what
 * the host has, not only against the last state), diagnostics sent to the engine's log attached to the resource,
 * import by id with the connection from the provider's configuration, and secrets kept secret across the wire.
 */
import { isDeepStrictEqual } from "node:util";
import * as grpc from "@grpc/grpc-js";
import { Empty } from "google-protobuf/google/protobuf/empty_pb";
import { Struct } from "google-protobuf/google/protobuf/struct_pb";
import { EngineClient } from "@pulumi/pulumi/proto/engine_grpc_pb";
import { LogRequest, LogSeverity } from "@pulumi/pulumi/proto/engine_pb";
import { PluginInfo } from "@pulumi/pulumi/proto/plugin_pb";
import { ResourceProviderService } from "@pulumi/pulumi/proto/provider_grpc_pb";
import * as proto from "@pulumi/pulumi/proto/provider_pb";
import { managedAssignments } from "../core/dropin";
import { observedInputs } from "../core/plan";
import { containsUnknown, describeProblem, inputOfProperty, MANAGED_PREFIX, UNKNOWN, validateNetworkArgs } from "../core/schema";
import { actionLines, planActions } from "../core/actions";
import type { HostFacts, HostPlan, NetworkSpec } from "../core/types";
import { provider as network, replacedInputs, storedSpec, validated } from "../dynamic";
import { assertCapable, capabilityWarnings, inspectHost } from "../engine";
import { NETWORK_TOKEN, PACKAGE_NAME, packageSchema, PLUGIN_HIDDEN_INPUTS } from "./schema";

type Properties = Record<string, unknown>;

/** Pulumi's wire markers (sdk/go/common/resource/sig). */
const SIG_KEY = "4dabf18193072939515e22adb298388d";
const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";

/** The inputs a host shows (drop-in, environment, running daemon): a difference there is drift, named per property. */
const HOST_VISIBLE = ["networkDriver", "portDriver", "ipv6", "mtu", "disableHostLoopback", "detachNetns", "slirp4netnsSandbox", "slirp4netnsSeccomp", "extraFlags", "containerIpv6", "pastaIpv6Compat"] as const;
/** Inputs that only the state knows (how to connect, verify, restart). */
const STATE_ONLY = ["connection", "verify", "restart"] as const;

/** `user@host:port/unit/dropInName`, the id Create returns and `pulumi import` takes. */
const ID_PATTERN = /^([^@/\s]+)@(\[[^\]]+\]|[^:/\s]+):(\d+)\/([^/\s]+)\/([^/\s]+)$/;

export interface PluginOptions {
  version: string;
  /** The engine's gRPC address (the plugin's first argument); logs go nowhere without one. */
  engineAddress?: string;
}

/** Raised by a handler: becomes the gRPC error the engine shows, with the message as details. */
function grpcError(error: unknown): grpc.ServiceError {
  const message = error instanceof Error ? error.message : String(error);
  return Object.assign(new Error(message), { code: grpc.status.UNKNOWN, details: message, metadata: new grpc.Metadata() });
}

export class RootlessDockerPlugin {
  private engine: EngineClient | undefined;
  /** `connection` from the provider's configuration: the default for every Network's own fields. */
  private providerConnection: Properties = {};
  private readonly schemaText: string;
  private logQueue: Promise<void> = Promise.resolve();
  private readonly logged = new Set<string>();

  constructor(private readonly options: PluginOptions) {
    this.schemaText = JSON.stringify(packageSchema(options.version));
    if (options.engineAddress) this.attachEngine(options.engineAddress);
  }

  /** Handlers for grpc-js; methods left out (Invoke, Call, Construct, List, Parameterize) answer UNIMPLEMENTED. */
  service(): grpc.UntypedServiceImplementation {
    // The engine shows a step's diagnostics with the step only if they arrive before the reply.
    const unary = <Request, Reply>(handler: (request: Request) => Promise<Reply>): grpc.handleUnaryCall<Request, Reply> => (call, callback) => {
      handler.call(this, call.request).then(
        async (reply) => {
          await this.logsSent();
          callback(null, reply);
        },
        async (error: unknown) => {
          await this.logsSent();
          callback(grpcError(error));
        },
      );
    };
    return {
      handshake: unary(this.handshake),
      getPluginInfo: unary(this.getPluginInfo),
      getSchema: unary(this.getSchema),
      checkConfig: unary(this.checkConfig),
      diffConfig: unary(this.diffConfig),
      configure: unary(this.configure),
      check: unary(this.check),
      diff: unary(this.diff),
      create: unary(this.create),
      read: unary(this.read),
      update: unary(this.update),
      delete: unary(this.delete),
      cancel: unary(async () => new Empty()),
      attach: unary(async (request: { getAddress(): string }) => {
        this.attachEngine(request.getAddress());
        return new Empty();
      }),
      getMapping: unary(async () => new proto.GetMappingResponse()),
      getMappings: unary(async () => new proto.GetMappingsResponse()),
    };
  }

  close(): void {
    this.engine?.close();
  }

  private attachEngine(address: string): void {
    this.engine?.close();
    this.engine = new EngineClient(address, grpc.credentials.createInsecure());
  }

  // ------------------------------------------------------------------------------------------
  // Plugin and provider configuration.

  private async handshake(request: proto.ProviderHandshakeRequest): Promise<proto.ProviderHandshakeResponse> {
    if (request.getEngineAddress()) this.attachEngine(request.getEngineAddress());
    return new proto.ProviderHandshakeResponse().setAcceptSecrets(true).setAcceptResources(false).setAcceptOutputs(false);
  }

  private async getPluginInfo(): Promise<PluginInfo> {
    return new PluginInfo().setVersion(this.options.version);
  }

  private async getSchema(request: proto.GetSchemaRequest): Promise<proto.GetSchemaResponse> {
    if (request.getVersion() !== 0) throw new Error(`rootless-docker: schema version ${request.getVersion()} is not supported (only 0)`);
    return new proto.GetSchemaResponse().setSchema(this.schemaText);
  }

  private async checkConfig(request: proto.CheckRequest): Promise<proto.CheckResponse> {
    const news = request.getNews() ?? new Struct();
    const failures: proto.CheckFailure[] = [];
    const connection = configConnection(plain(news.toJavaScript()));
    if (connection !== undefined && (typeof connection !== "object" || connection === null || Array.isArray(connection))) {
      failures.push(new proto.CheckFailure().setProperty("connection").setReason("must be an object with the fields of a Network's connection"));
    }
    return new proto.CheckResponse().setInputs(news).setFailuresList(failures);
  }

  private async diffConfig(request: proto.DiffRequest): Promise<proto.DiffResponse> {
    const same = isDeepStrictEqual(configConnection(plain(request.getOlds()?.toJavaScript() ?? {})), configConnection(plain(request.getNews()?.toJavaScript() ?? {})));
    return new proto.DiffResponse().setChanges(same ? proto.DiffResponse.DiffChanges.DIFF_NONE : proto.DiffResponse.DiffChanges.DIFF_SOME).setDiffsList(same ? [] : ["connection"]);
  }

  private async configure(request: proto.ConfigureRequest): Promise<proto.ConfigureResponse> {
    const args = plain(request.getArgs()?.toJavaScript() ?? {});
    // Older engines send only the flat variables map, values as strings.
    const fromVariables = request.getVariablesMap().get(`${PACKAGE_NAME}:config:connection`);
    const connection = configConnection(args) ?? (fromVariables === undefined ? undefined : JSON.parse(fromVariables));
    this.providerConnection = typeof connection === "object" && connection !== null ? (connection as Properties) : {};
    return new proto.ConfigureResponse().setAcceptsecrets(true).setSupportspreview(true).setAcceptresources(false).setAcceptoutputs(false);
  }

  // ------------------------------------------------------------------------------------------
  // Resource operations.

  private async check(request: proto.CheckRequest): Promise<proto.CheckResponse> {
    assertToken(request.getUrn());
    const news = request.getNews() ?? new Struct();
    const raw = plain(news.toJavaScript());
    // A connection without a credential uses the agent of the plugin's environment, as @pulumi/command does.
    const validation = validateNetworkArgs(this.effective(raw), { sshAuthSock: process.env.SSH_AUTH_SOCK });
    const failures = [
      ...PLUGIN_HIDDEN_INPUTS.filter((name) => name in raw).map((name) => ({ property: name, reason: `is not an input of ${NETWORK_TOKEN}` })),
      ...(validation.ok ? [] : validation.problems.map((problem) => (problem.property === "connection" && raw.connection === undefined ? { property: "connection", reason: `is required: set it on the Network or in the provider's configuration (${PACKAGE_NAME}:connection)` } : { property: problem.property, reason: describeProblem(problem) }))),
    ];
    return new proto.CheckResponse().setInputs(news).setFailuresList(failures.map((failure) => new proto.CheckFailure().setProperty(failure.property).setReason(failure.reason)));
  }

  private async diff(request: proto.DiffRequest): Promise<proto.DiffResponse> {
    const urn = request.getUrn();
    const news = this.effective(plain(request.getNews()?.toJavaScript() ?? {}));
    const olds = this.effective(plain(request.getOlds()?.toJavaScript() ?? {}));
    const next = validated(news, "diff").spec;
    const previous = storedSpec(olds);
    const reply = new proto.DiffResponse();
    const detailed = reply.getDetaileddiffMap();
    const mark = (path: string, kind: proto.PropertyDiff.Kind) => detailed.set(path, new proto.PropertyDiff().setKind(kind).setInputdiff(true));

    const replaces = previous === undefined ? [] : replacedInputs(previous, next);
    if (replaces.length > 0) {
      for (const name of replaces) {
        if (name !== "connection") mark(name, proto.PropertyDiff.Kind.UPDATE_REPLACE);
        else for (const key of ["host", "port", "user"] as const) if (previous!.connection[key] !== next.connection[key]) mark(`connection.${key}`, proto.PropertyDiff.Kind.UPDATE_REPLACE);
      }
      // Another drop-in on the same host: the old one must go first, or it would override (or restart twice) the new.
      return reply
        .setChanges(proto.DiffResponse.DiffChanges.DIFF_SOME)
        .setReplacesList([...detailed.keys()].map(String))
        .setDiffsList(replaces)
        .setDeletebeforereplace(!replaces.includes("connection"))
        .setHasdetaileddiff(true);
    }
    // Values known only after other resources are applied (preview): the engine compares them itself.
    if (containsUnknown(news)) return reply.setChanges(proto.DiffResponse.DiffChanges.DIFF_SOME);

    const inspected = await this.inspect(next, urn, validated(news, "diff").warnings);
    const observed = observedInputs(next, inspected.facts) as Properties;
    const spec = next as unknown as Properties;
    const drifted = HOST_VISIBLE.filter((name) => !isDeepStrictEqual(observed[name], spec[name]));
    const changedInState = previous === undefined ? [] : STATE_ONLY.filter((name) => !isDeepStrictEqual(previous[name], next[name]));
    for (const name of [...drifted, ...changedInState]) mark(name, proto.PropertyDiff.Kind.UPDATE);
    const differs = inspected.plan.differs || drifted.length > 0 || changedInState.length > 0;
    this.logPlan(urn, inspected.host, next, inspected.facts, inspected.plan);
    return reply
      .setChanges(differs ? proto.DiffResponse.DiffChanges.DIFF_SOME : proto.DiffResponse.DiffChanges.DIFF_NONE)
      .setDiffsList([...drifted, ...changedInState])
      .setHasdetaileddiff(true);
  }

  private async create(request: proto.CreateRequest): Promise<proto.CreateResponse> {
    const urn = request.getUrn();
    const { inputs, secretKeys } = unwrapped(request.getProperties());
    const effective = this.effective(inputs);
    if (request.getPreview()) {
      await this.previewApply(urn, effective);
      return new proto.CreateResponse().setProperties(toStruct(inputs, secretKeys));
    }
    const { id, outs } = await network.create(effective);
    this.logApplied(urn, outs);
    return new proto.CreateResponse().setId(id).setProperties(toStruct(outs, withConnection(secretKeys))).setRefreshBeforeUpdate(true);
  }

  private async update(request: proto.UpdateRequest): Promise<proto.UpdateResponse> {
    const urn = request.getUrn();
    const { inputs, secretKeys } = unwrapped(request.getNews());
    const effective = this.effective(inputs);
    // Diff has already logged the plan of this update, in preview and in the update alike.
    if (request.getPreview()) return new proto.UpdateResponse().setProperties(toStruct(inputs, secretKeys));
    const { outs } = await network.update!(request.getId(), {}, effective);
    this.logApplied(urn, outs, { warnings: false });
    return new proto.UpdateResponse().setProperties(toStruct(outs, withConnection(secretKeys))).setRefreshBeforeUpdate(true);
  }

  /**
   * A refresh (and, since every Network asks for refresh-before-update, each `pulumi preview` and `up`): outputs keep
   * the declared inputs with fresh observations; inputs mirror the host, so the preview's old values are the host's.
   * With no stored state this is an import: the id names host, port, user, unit and drop-in.
   */
  private async read(request: proto.ReadRequest): Promise<proto.ReadResponse> {
    const id = request.getId();
    const stored = unwrapped(request.getProperties());
    const storedInputs = unwrapped(request.getInputs());
    if (Object.keys(stored.inputs).length === 0) return this.importNetwork(id);
    const { props, inputs } = await network.read!(id, this.effective(stored.inputs));
    const mirrored = { ...(inputs as Properties) };
    // The connection the program gave (as written, secret) or none when it comes from the provider's configuration.
    if ("connection" in storedInputs.inputs) mirrored.connection = storedInputs.inputs.connection;
    else delete mirrored.connection;
    const secretKeys = withConnection(new Set([...stored.secretKeys, ...storedInputs.secretKeys]));
    return new proto.ReadResponse().setId(id).setProperties(toStruct(props as Properties, secretKeys)).setInputs(toStruct(mirrored, secretKeys)).setRefreshBeforeUpdate(true);
  }

  private async delete(request: proto.DeleteRequest): Promise<Empty> {
    const { inputs: outputs } = unwrapped(request.getProperties());
    await network.delete!(request.getId(), this.effective(outputs));
    return new Empty();
  }

  // ------------------------------------------------------------------------------------------

  private async importNetwork(id: string): Promise<proto.ReadResponse> {
    const match = ID_PATTERN.exec(id);
    if (!match) throw new Error(`rootless-docker: import: the id ${JSON.stringify(id)} is not user@host:port/unit/dropInName\n  fix: e.g. ci@192.0.2.11:22/docker.service/override.conf`);
    const [, user, host, port, unit, dropInName] = match;
    const connection = { ...this.providerConnection, host: host.replace(/^\[|\]$/g, ""), port: Number(port), user };
    // A first look, to learn which network driver our drop-in names: the plan needs one.
    const target = { connection, unit, dropInName };
    const probe = validated({ ...target, networkDriver: "slirp4netns" }, "import").spec;
    const facts = (await inspectHost(probe)).facts;
    const net = managedAssignments(facts.dropIn.content)[`${MANAGED_PREFIX}NET`];
    if (facts.dropIn.content === null || net === undefined) {
      throw new Error(`rootless-docker: ${user}@${host}:${port}: import: ${facts.dropIn.path} ${facts.dropIn.content === null ? "does not exist" : `sets no ${MANAGED_PREFIX}NET`}: nothing to adopt\n  fix: check the id (user@host:port/unit/dropInName), or create the Network instead of importing it`);
    }
    const spec = validated({ ...target, networkDriver: net }, "import").spec;
    // The host comes from the id and stays in the inputs (the program must say which host); credentials stay in the configuration.
    const named = { host: connection.host, user, ...(connection.port === 22 ? {} : { port: connection.port }) };
    const hostInputs = { connection: named, ...withoutDefaults(observedInputs(spec, facts) as Properties) };
    const { props } = await network.read!(id, { ...hostInputs, connection });
    return new proto.ReadResponse().setId(id).setProperties(toStruct(props as Properties, withConnection(new Set()))).setInputs(toStruct(hostInputs, new Set())).setRefreshBeforeUpdate(true);
  }

  /** Preview of a create: the same checks an apply makes first (capabilities, warnings, whether Docker restarts). */
  private async previewApply(urn: string, effective: Properties): Promise<void> {
    if (containsUnknown(effective)) return;
    const { spec, warnings } = validated(effective, "preview");
    await this.inspect(spec, urn, warnings).then((inspected) => this.logPlan(urn, inspected.host, spec, inspected.facts, inspected.plan));
  }

  /** Reads the host, fails on a capability error, and sends every warning to the engine's log. */
  private async inspect(spec: NetworkSpec, urn: string, inputWarnings: string[]) {
    const warnings = new Set(inputWarnings);
    const inspected = await inspectHost(spec, { onWarning: (warning) => warnings.add(warning) });
    assertCapable(inspected.host, inspected.plan);
    for (const warning of capabilityWarnings(inspected.plan)) warnings.add(`${inspected.host}: ${warning}`);
    for (const warning of warnings) this.log(LogSeverity.WARNING, urn, warning);
    return inspected;
  }

  /** What differs on which level (file / effective / running), and the restart it costs. */
  private logPlan(urn: string, host: string, spec: NetworkSpec, facts: HostFacts, plan: HostPlan): void {
    if (plan.changes.length > 0) {
      const lines = plan.changes.map((change) => {
        const input = inputOfProperty(change.property);
        const what = input === undefined ? change.property : `${input} (${change.property})`;
        return `  ${change.level}: ${what}: ${change.actual ?? "(unset)"} → ${change.desired ?? "(unset)"}${change.cause ? ` (${change.cause})` : ""}`;
      });
      this.log(LogSeverity.INFO, urn, `${host}: differs from the inputs (level: input: on the host → wanted):\n${lines.join("\n")}`);
    }
    // The same actions as the CLI's plan: the files, daemon-reload and restart, each with its reason.
    if (plan.differs) this.log(LogSeverity.INFO, urn, `${host}: the apply will:\n${actionLines(planActions(spec.unit, facts, plan)).map((line) => `  ${line}`).join("\n")}`);
    if (plan.restart && spec.restart === "on-change") {
      this.log(LogSeverity.WARNING, urn, `${host}: will restart ${spec.unit} (${plan.restartReason}): every container of this rootless Docker stops (live-restore does not work rootless)`);
    } else if (plan.restart) {
      this.log(LogSeverity.WARNING, urn, `${host}: ${spec.unit} needs a restart to use the new settings; restart is "never", so it stays pending`);
    }
  }

  private logApplied(urn: string, outs: Properties, opts: { warnings: boolean } = { warnings: true }): void {
    if (opts.warnings) for (const warning of (outs.warnings as string[] | undefined) ?? []) this.log(LogSeverity.WARNING, urn, warning);
    if (outs.restarted === true) this.log(LogSeverity.INFO, urn, `${String(outs.host)}: restarted ${String(outs.unit)} (InvocationID now ${String(outs.invocationId)})`);
  }

  private log(severity: LogSeverity, urn: string, message: string): void {
    const engine = this.engine;
    // The engine diffs a resource twice in one run (after its refresh, then for the update): say each thing once.
    const key = `${urn}\0${severity}\0${message}`;
    if (engine === undefined || this.logged.has(key)) return;
    this.logged.add(key);
    // Diagnostics must never fail an operation: an engine that went away loses the message, not the apply.
    // One after the other, so that the engine shows them in the order they were said.
    const request = new LogRequest().setSeverity(severity).setUrn(urn).setMessage(message).setEphemeral(false);
    this.logQueue = this.logQueue.then(() => new Promise((resolve) => engine.log(request, () => resolve())));
  }

  private logsSent(): Promise<void> {
    return this.logQueue;
  }

  /** The resource's inputs with the provider's `connection` under its own fields. */
  private effective(inputs: Properties): Properties {
    const own = inputs.connection;
    if (Object.keys(this.providerConnection).length === 0 || own === UNKNOWN) return inputs;
    return { ...inputs, connection: { ...this.providerConnection, ...(typeof own === "object" && own !== null ? own : {}) } };
  }
}

function assertToken(urn: string): void {
  const type = urn.split("::")[2];
  if (type !== undefined && type !== NETWORK_TOKEN) throw new Error(`rootless-docker: unknown resource type ${type} (this plugin has ${NETWORK_TOKEN})`);
}

function configConnection(args: Properties): unknown {
  const value = args.connection;
  return typeof value === "string" ? JSON.parse(value) : value;
}

/** Outputs always hold the effective connection, credentials included: it is secret whether or not an input was. */
function withConnection(secretKeys: Set<string>): Set<string> {
  return new Set([...secretKeys, "connection"]);
}

/** The values with every secret marker removed (the plugin accepts secrets), and which top-level keys held one. */
function unwrapped(struct: Struct | undefined): { inputs: Properties; secretKeys: Set<string> } {
  const raw = (struct?.toJavaScript() ?? {}) as Properties;
  const secretKeys = new Set(Object.keys(raw).filter((key) => containsSecret(raw[key])));
  return { inputs: plain(raw), secretKeys };
}

function isSecret(value: unknown): value is { value: unknown } {
  return typeof value === "object" && value !== null && (value as Properties)[SIG_KEY] === SECRET_SIG;
}

function containsSecret(value: unknown): boolean {
  if (isSecret(value)) return true;
  if (Array.isArray(value)) return value.some(containsSecret);
  if (typeof value === "object" && value !== null) return Object.values(value).some(containsSecret);
  return false;
}

function plain<T>(value: T): T {
  if (isSecret(value)) return plain(value.value) as T;
  if (Array.isArray(value)) return value.map(plain) as T;
  if (typeof value === "object" && value !== null) return Object.fromEntries(Object.entries(value).map(([key, child]) => [key, plain(child)])) as T;
  return value;
}

/** A Struct of the values, the named top-level keys marked secret; `undefined` left out (Struct rejects it). */
function toStruct(values: Properties, secretKeys: Set<string>): Struct {
  const json = JSON.parse(JSON.stringify(values)) as Properties;
  for (const key of secretKeys) if (key in json) json[key] = { [SIG_KEY]: SECRET_SIG, value: json[key] };
  return Struct.fromJavaScript(json as never);
}

/** Imported inputs read like a program someone wrote: values equal to the defaults are left out. */
function withoutDefaults(inputs: Properties): Properties {
  const defaults = validateNetworkArgs({ connection: { host: "localhost", user: "x", password: "x" }, networkDriver: inputs.networkDriver });
  if (!defaults.ok) return inputs;
  const spec = defaults.value as unknown as Properties;
  return Object.fromEntries(Object.entries(inputs).filter(([key, value]) => key === "networkDriver" || (key !== "connection" && !isDeepStrictEqual(value, spec[key]))));
}

export function serviceDefinition(): grpc.ServiceDefinition {
  return ResourceProviderService as unknown as grpc.ServiceDefinition;
}
