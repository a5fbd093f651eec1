/**
 * The Pulumi package schema of the `rootless-docker` plugin, derived from the zod schema of the inputs
 * (`networkArgsSchema`: names, types, enums, defaults, descriptions), so that the inputs are written once.
 * `npm run build` writes it to dist/provider/plugin/schema.json; the plugin serves the same text from GetSchema.
 */
import { z } from "zod";
import { networkArgsSchema } from "../core/schema";
import { DIAGNOSES } from "../core/types";

export const PACKAGE_NAME = "rootless-docker";
export const NETWORK_TOKEN = `${PACKAGE_NAME}:index:Network`;
const TYPE_PREFIX = `${PACKAGE_NAME}:index:`;

/** Inputs a program in another language never sets: the fleet's rollout exists only for RootlessDockerFleet. */
export const PLUGIN_HIDDEN_INPUTS = ["rollout"] as const;

/** Pulumi schema property (the subset used here). */
export interface PropertySpec {
  type?: "string" | "integer" | "number" | "boolean" | "array" | "object";
  $ref?: string;
  items?: PropertySpec;
  additionalProperties?: PropertySpec;
  oneOf?: PropertySpec[];
  description?: string;
  default?: string | number | boolean;
  secret?: boolean;
}

interface ObjectTypeSpec {
  type: "object";
  description?: string;
  properties: Record<string, PropertySpec>;
  required?: string[];
}

interface EnumTypeSpec {
  type: "string";
  description?: string;
  enum: { value: string; name?: string }[];
}

type TypeSpec = ObjectTypeSpec | EnumTypeSpec;

/** A JSON Schema node as zod's `toJSONSchema` writes it (the subset this schema uses). */
interface JsonNode {
  type?: string;
  enum?: unknown[];
  anyOf?: JsonNode[];
  properties?: Record<string, JsonNode>;
  required?: string[];
  items?: JsonNode;
  default?: unknown;
  description?: string;
}

/** Type names per property path, where the property's own name would read badly in the SDKs. */
const TYPE_NAMES: Record<string, string> = {
  connection: "Connection",
  "connection.proxy": "ProxyConnection",
  verify: "Verify",
  "verify.targets": "VerifyTarget",
  containerIpv6: "ContainerIpv6",
  networkDriver: "NetworkDriver",
  portDriver: "PortDriver",
  restart: "RestartPolicy",
  slirp4netnsSandbox: "Slirp4netnsOption",
  slirp4netnsSeccomp: "Slirp4netnsOption",
};

/** Output properties besides the echoed inputs (see NetworkOutputs in ../dynamic.ts). */
function outputProperties(): Record<string, PropertySpec> {
  const str = (description: string): PropertySpec => ({ type: "string", description });
  const bool = (description: string): PropertySpec => ({ type: "boolean", description });
  return {
    host: str("`user@host:port` of the host."),
    networkDriverInEffect: str("Network driver on the running RootlessKit command line; empty when no daemon runs."),
    portDriverInEffect: str("Port driver on the running RootlessKit command line; empty when no daemon runs or it names none."),
    ipv6InEffect: bool("The running RootlessKit has `--ipv6`."),
    mtuInEffect: { type: "integer", description: "MTU on the running RootlessKit command line; empty when not on it." },
    detachNetnsInEffect: bool("The running RootlessKit has `--detach-netns` (from DETACH_NETNS, the script's own default, or FLAGS)."),
    disableHostLoopbackInEffect: bool("The running RootlessKit has `--disable-host-loopback`."),
    slirp4netnsSandboxInEffect: str("`--slirp4netns-sandbox` of the running RootlessKit; empty when not on its command line."),
    slirp4netnsSeccompInEffect: str("`--slirp4netns-seccomp` of the running RootlessKit; empty when not on its command line."),
    extraFlagsInEffect: { type: "array", items: { type: "string" }, description: "The running RootlessKit's flags beyond the script's own and the typed inputs' (what extraFlags gives)." },
    versions: { $ref: `#/types/${TYPE_PREFIX}Versions`, description: "Versions found on the host; empty when the binary is missing." },
    dropInPath: str("Absolute path of our drop-in on the host."),
    dropInSha256: str("sha256 (hex) of our drop-in as it is on the host; empty when the file does not exist."),
    restarted: bool("The last apply restarted the daemon."),
    invocationId: str("systemd's InvocationID of the running unit: it changes whenever the daemon restarts."),
    compatInUse: bool("The pasta IPv6 compat helper (ExecStartPost) is in use."),
    warnings: { type: "array", items: { type: "string" }, description: "Capability and security warnings found by the last apply or refresh." },
    verification: { $ref: `#/types/${TYPE_PREFIX}Verification`, description: "The IPv6 check of the last apply; empty when verification is disabled." },
  };
}

function outputTypes(): Record<string, TypeSpec> {
  const strings = (names: string[]) => Object.fromEntries(names.map((name) => [name, { type: "string" } as PropertySpec]));
  const diagnosis: PropertySpec = {
    type: "string",
    description: `One of ${DIAGNOSES.join(", ")}.`,
  };
  return {
    [`${TYPE_PREFIX}Versions`]: { type: "object", properties: strings(["rootlesskit", "pasta", "slirp4netns", "dockerd"]) },
    [`${TYPE_PREFIX}VerificationTarget`]: {
      type: "object",
      properties: { address: { type: "string" }, tcpPort: { type: "integer" }, icmp: { type: "boolean" }, tcp: { type: "boolean" }, rttMs: { type: "number" } },
      required: ["address"],
    },
    [`${TYPE_PREFIX}VerificationPath`]: {
      type: "object",
      properties: {
        path: { type: "string", description: "namespace (the RootlessKit network namespace) or container (a bridge container)." },
        reachable: { type: "boolean" },
        diagnosis,
        detail: { type: "string" },
        addresses: { type: "array", items: { type: "string" } },
        defaultRoute: { type: "string" },
        targets: { type: "array", items: { $ref: `#/types/${TYPE_PREFIX}VerificationTarget` } },
      },
      required: ["path", "reachable", "diagnosis", "detail", "addresses", "targets"],
    },
    [`${TYPE_PREFIX}Verification`]: {
      type: "object",
      properties: {
        reachable: { type: "boolean", description: "Every target answered from every place `covers` names." },
        covers: { type: "string", description: "What `reachable` covers: namespace (the RootlessKit namespace only) or namespace+container (and a bridge container)." },
        namespace: { $ref: `#/types/${TYPE_PREFIX}VerificationPath`, description: "The verification from the RootlessKit network namespace." },
        container: { $ref: `#/types/${TYPE_PREFIX}VerificationPath`, description: "The verification from a bridge container; absent (null) = not probed, containerIpv6 is not managed." },
        icmp: { type: "boolean" },
        tcp: { type: "boolean" },
        rttMs: { type: "number" },
        checkedAt: { type: "string" },
        diagnosis,
        detail: { type: "string" },
        paths: { type: "array", items: { $ref: `#/types/${TYPE_PREFIX}VerificationPath` } },
      },
      required: ["reachable", "covers", "namespace", "icmp", "tcp", "checkedAt", "diagnosis", "detail", "paths"],
    },
  };
}

/** Turns zod's JSON Schema into Pulumi schema properties, collecting object and enum types on the way. */
class Converter {
  readonly types: Record<string, TypeSpec> = {};

  property(node: JsonNode, path: string): PropertySpec {
    const spec = this.shape(node, path);
    if (node.description) spec.description = node.description;
    if (["string", "number", "boolean"].includes(typeof node.default) && spec.$ref === undefined) spec.default = node.default as string | number | boolean;
    else if (["string", "number", "boolean"].includes(typeof node.default) && node.description) spec.description = `${node.description} Default: ${String(node.default)}.`;
    return spec;
  }

  private shape(node: JsonNode, path: string): PropertySpec {
    if (node.anyOf) return { oneOf: node.anyOf.map((member) => this.shape(member, path)) };
    if (node.enum) return this.enumRef(node, path);
    switch (node.type) {
      case "object":
        return this.objectRef(node, path);
      case "array":
        return { type: "array", items: this.shape(node.items ?? {}, path) };
      case "string":
      case "integer":
      case "number":
      case "boolean":
        return { type: node.type };
      default:
        throw new Error(`schema: ${path}: no Pulumi type for JSON Schema ${JSON.stringify(node)}`);
    }
  }

  /** The object's properties in Pulumi form, and which are required. */
  members(node: JsonNode, path: string): { properties: Record<string, PropertySpec>; required: string[] } {
    const properties = Object.fromEntries(Object.entries(node.properties ?? {}).map(([name, child]) => [name, this.property(child, path === "" ? name : `${path}.${name}`)]));
    return { properties, required: node.required ?? [] };
  }

  private objectRef(node: JsonNode, path: string): PropertySpec {
    const token = TYPE_PREFIX + this.typeName(path);
    const { properties, required } = this.members(node, path);
    this.types[token] = { type: "object", ...(node.description ? { description: node.description } : {}), properties, ...(required.length > 0 ? { required } : {}) };
    return { $ref: `#/types/${token}` };
  }

  private enumRef(node: JsonNode, path: string): PropertySpec {
    const token = TYPE_PREFIX + this.typeName(path);
    this.types[token] = { type: "string", enum: (node.enum as string[]).map((value) => ({ value, ...(/^[a-z]/.test(value) ? {} : { name: `Value${value}` }) })) };
    return { $ref: `#/types/${token}` };
  }

  private typeName(path: string): string {
    const name = TYPE_NAMES[path] ?? path.split(".").pop()!;
    return name.charAt(0).toUpperCase() + name.slice(1);
  }
}

/** The plugin's input properties: the zod schema's, without what only TypeScript's fleet sets. */
export function pluginInputSchema() {
  return networkArgsSchema.omit(Object.fromEntries(PLUGIN_HIDDEN_INPUTS.map((name) => [name, true])) as { rollout: true });
}

export interface PackageSchema {
  name: string;
  version: string;
  resources: Record<string, { inputProperties: Record<string, PropertySpec>; properties: Record<string, PropertySpec>; requiredInputs: string[]; required: string[] } & Record<string, unknown>>;
  types: Record<string, TypeSpec>;
  config: { variables: Record<string, PropertySpec> };
  provider: { inputProperties: Record<string, PropertySpec>; properties: Record<string, PropertySpec> } & Record<string, unknown>;
  [key: string]: unknown;
}

export function packageSchema(version: string): PackageSchema {
  const converter = new Converter();
  const json = z.toJSONSchema(pluginInputSchema(), { io: "input", unrepresentable: "any" }) as JsonNode;
  const { properties: inputs, required } = converter.members(json, "");
  // `host` may come from the import id and the rest from the provider's configuration: Check reports it missing.
  const connectionType = converter.types[`${TYPE_PREFIX}Connection`] as ObjectTypeSpec;
  delete connectionType.required;
  // The connection may come from the provider's configuration instead (one set of credentials for many hosts).
  const connection: PropertySpec = { ...inputs.connection, secret: true };
  inputs.connection = connection;
  const providerConnection: PropertySpec = {
    ...connection,
    description: "Default SSH connection for every Network of this provider; a Network's own `connection` fields win. Used by `pulumi import` (the id names host, port and user).",
  };
  const outputs = { ...inputs, ...outputProperties() };
  return {
    name: PACKAGE_NAME,
    version,
    displayName: "Rootless Docker networking",
    description: "Declare how rootless Docker hosts are networked (RootlessKit driver, IPv6, port driver), diffed against the host's drop-in, environment and running daemon over SSH.",
    keywords: ["docker", "rootless", "rootlesskit", "pasta", "ipv6", "systemd", "category/utility", "kind/native"],
    license: "Apache-2.0",
    config: { variables: { connection: providerConnection } },
    provider: {
      description: "The rootless-docker provider: the SSH connection defaults for its Networks.",
      inputProperties: { connection: providerConnection },
      properties: { connection: providerConnection },
    },
    resources: {
      [NETWORK_TOKEN]: {
        description:
          "The RootlessKit network settings of one host's rootless Docker, kept in a systemd user drop-in. Diff compares them with the drop-in (file), the unit's merged environment (effective) and the running daemon (running). Import id: `user@host:port/unit/dropInName`.",
        inputProperties: inputs,
        requiredInputs: required.filter((name) => name !== "connection"),
        properties: outputs,
        required: ["networkDriver", "portDriver", "ipv6", "mtu", "unit", "dropInName", "host", "dropInPath", "restarted", "invocationId", "compatInUse", "warnings", "ipv6InEffect"],
      },
    },
    types: { ...converter.types, ...outputTypes() },
    language: {
      go: { importBasePath: "github.com/pulumi-rootless-docker/sdk/go/rootlessdocker", packageImportAliases: {} },
      python: { packageName: "pulumi_rootless_docker" },
      nodejs: { packageName: "@pulumi-rootless-docker/sdk" },
    },
  };
}
