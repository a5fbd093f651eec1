/**
 * The dynamic provider behind `RootlessDockerNetwork`: Pulumi's check/diff/create/read/update/delete over the engine.
 *
 * The Pulumi engine never loads this file directly: the resource serializes a shim that requires
 * `pulumi-rootless-docker/dynamic` by name, so state written by any version runs the installed code.
 * Everything returned here crosses the dynamic-provider host as a protobuf Struct: plain JSON data only
 * (no `undefined`, Date, Map, Buffer or BigInt), which `toStruct` guarantees.
 * One host process serves every resource at once: nothing here keeps state between calls.
 */
import { isDeepStrictEqual } from "node:util";
import type * as pulumi from "@pulumi/pulumi";
import { compatHelperInstalled, observedInputs } from "./core/plan";
import { containsUnknown, describeProblem, networkArgsSchema, validateNetworkArgs } from "./core/schema";
import type { NetworkDriver, NetworkSpec, PortDriver, VerificationResult } from "./core/types";
import { applyHost, assertCapable, capabilityWarnings, inspectHost, removeHost } from "./engine";
import type { InspectResult } from "./engine/types";
import { withContextLine } from "./errors";
import { describeFailedHost, type Rollout } from "./core/waves";

/** The key Pulumi adds to a dynamic resource's inputs and outputs: the serialized provider. */
const PROVIDER_KEY = "__provider";

/** The input names, in schema order: what outputs echo and what a stored state is read back from. */
const INPUT_NAMES = Object.keys(networkArgsSchema.shape) as (keyof NetworkSpec)[];

/**
 * What each `RootlessDockerNetwork` has after create, update or refresh, besides the inputs it echoes
 * (validated, with every default applied: `connection` with its port and dial settings, `portDriver`, `mtu`, `verify`, …).
 * `connection` is echoed because read and delete need it; the resource marks it secret.
 */
export interface NetworkOutputs {
  /** `user@host:port` of the host. */
  host: string;
  /** Network driver on the running RootlessKit command line; null when no daemon runs. */
  networkDriverInEffect: NetworkDriver | null;
  /** Port driver on the running RootlessKit command line; null when no daemon runs or it names none. */
  portDriverInEffect: PortDriver | null;
  /** The running RootlessKit has `--ipv6`. */
  ipv6InEffect: boolean;
  /** MTU on the running RootlessKit command line; null when not on it. */
  mtuInEffect: number | null;
  /** The running RootlessKit has `--detach-netns` (from DETACH_NETNS, the script's own default, or FLAGS). */
  detachNetnsInEffect: boolean;
  /** The running RootlessKit has `--disable-host-loopback`. */
  disableHostLoopbackInEffect: boolean;
  /** `--slirp4netns-sandbox` / `--slirp4netns-seccomp` of the running RootlessKit; null when not on its command line. */
  slirp4netnsSandboxInEffect: string | null;
  /** `--slirp4netns-seccomp` of the running RootlessKit; null when not on its command line. */
  slirp4netnsSeccompInEffect: string | null;
  /** The running RootlessKit's flags beyond the script's own and the typed inputs' (what extraFlags gives). */
  extraFlagsInEffect: string[];
  /** Versions found on the host; null when the binary is missing. */
  versions: {
    /** `rootlesskit --version`. */
    rootlesskit: string | null;
    /** `pasta --version`. */
    pasta: string | null;
    /** `slirp4netns --version`. */
    slirp4netns: string | null;
    /** `dockerd --version`. */
    dockerd: string | null;
  };
  /** Absolute path of our drop-in on the host. */
  dropInPath: string;
  /** sha256 (hex) of our drop-in as it is on the host; null when the file does not exist. */
  dropInSha256: string | null;
  /** The last apply restarted the daemon (a refresh keeps the value of the last apply). */
  restarted: boolean;
  /** systemd's InvocationID of the running unit: it changes whenever the daemon restarts. */
  invocationId: string;
  /** The pasta IPv6 compat helper (ExecStartPost) is in use. */
  compatInUse: boolean;
  /** Capability and security warnings found by the last apply or refresh. */
  warnings: string[];
  /** The IPv6 check of the last apply (`covers` says whether `reachable` speaks for the namespace only); null when verification is disabled (a refresh does not re-verify). */
  verification: VerificationResult | null;
}

/** Outputs as stored: the echoed inputs plus what was observed. */
export type NetworkState = NetworkSpec & NetworkOutputs;

/** The dynamic provider behind `RootlessDockerNetwork` (check, diff, create, read, update, delete); what the serialized provider requires by name. */
export const provider: pulumi.dynamic.ResourceProvider = {
  /** Validation only, no I/O; values Pulumi does not know yet (preview) are passed through unjudged. */
  async check(_olds: Record<string, unknown>, news: Record<string, unknown>): Promise<pulumi.dynamic.CheckResult> {
    const validation = validateNetworkArgs(news, environment());
    return { inputs: news, failures: validation.ok ? [] : validation.problems.map((problem) => ({ property: problem.property, reason: describeProblem(problem) })) };
  },

  async diff(_id: string, olds: Record<string, unknown>, news: Record<string, unknown>): Promise<pulumi.dynamic.DiffResult> {
    const next = validated(news, "diff").spec;
    const previous = storedSpec(olds);
    const replaces = previous === undefined ? [] : replacedInputs(previous, next);
    // Another drop-in on the same host: the old one must go first, or it would override (or restart twice) the new.
    if (replaces.length > 0) return { changes: true, replaces, deleteBeforeReplace: !replaces.includes("connection") };
    // In preview, unknown inputs (outputs of other resources) may be the very values the host is compared with,
    // or the connection itself: report a change without connecting; `pulumi up` calls diff again with them known.
    if (containsUnknown(withoutProviderKey(news))) return { changes: true };

    const inspected = await inspectHost(next);
    assertCapable(inspected.host, inspected.plan);
    // Inputs the host cannot show (verify, restart, credentials) still need an update to reach the state.
    return { changes: inspected.plan.differs || !isDeepStrictEqual(previous, next) };
  },

  async create(inputs: Record<string, unknown>): Promise<pulumi.dynamic.CreateResult> {
    const outs = await applied(validated(inputs, "create"));
    return { id: `${outs.host}/${outs.unit}/${outs.dropInName}`, outs };
  },

  async update(_id: string, _olds: Record<string, unknown>, news: Record<string, unknown>): Promise<pulumi.dynamic.UpdateResult> {
    return { outs: await applied(validated(news, "update")) };
  },

  /**
   * `props` keep the declared inputs (so later reads and deletes still know what is ours) with fresh observations;
   * `inputs` mirror what the host really has, so `pulumi preview --refresh` shows drift property by property.
   */
  async read(id: string, props?: Record<string, unknown>): Promise<pulumi.dynamic.ReadResult> {
    const stored = props ?? {};
    const { spec, warnings } = validated(stored, "refresh");
    const engineWarnings: string[] = [];
    const inspected = await inspectHost(spec, { onWarning: (warning) => engineWarnings.push(warning) });
    const observed = observedOutputs(spec, inspected, {
      restarted: stored.restarted === true,
      warnings: unique([...warnings, ...engineWarnings, ...capabilityWarnings(inspected.plan)]),
      verification: (stored.verification as VerificationResult | null | undefined) ?? null,
    });
    return { id, props: observed, inputs: toStruct(observedInputs(spec, inspected.facts)) };
  },

  async delete(_id: string, props: Record<string, unknown>): Promise<void> {
    await removeHost(validated(props, "delete").spec);
  },
};

/** The inputs after `check`: the validated spec with defaults applied, and what to warn about. */
export interface ValidatedInputs {
  /** The desired state, validated, defaults applied. */
  spec: NetworkSpec;
  /** Security warnings about the inputs themselves (e.g. host-key verification skipped). */
  warnings: string[];
  /** Set when a fleet declared the resource; only for the message of a failure. */
  rollout?: Rollout;
}

/** A connection without a credential uses the agent of the provider's environment, as @pulumi/command does. */
const environment = () => ({ sshAuthSock: process.env.SSH_AUTH_SOCK });

/** Invalid inputs cannot get here past `check`, except from a state written by an incompatible version. */
export function validated(raw: Record<string, unknown>, step: string): ValidatedInputs {
  const validation = validateNetworkArgs(pickInputs(raw), environment());
  // The spec (what reaches the host) has no rollout: it is read from the validated raw inputs instead.
  if (validation.ok) return { spec: validation.value, warnings: validation.warnings, ...(raw.rollout === undefined ? {} : { rollout: raw.rollout as Rollout }) };
  const problems = validation.problems.map((problem) => `  ${problem.property}: ${describeProblem(problem)}`).join("\n");
  throw new Error(`RootlessDockerNetwork: ${step}: the inputs are invalid:\n${problems}\n  fix: correct the inputs named above (a state from an incompatible version needs \`pulumi refresh\` after fixing them)`);
}

/** The spec an earlier apply recorded; undefined when the state cannot be read as inputs any more. */
export function storedSpec(olds: Record<string, unknown>): NetworkSpec | undefined {
  const validation = validateNetworkArgs(pickInputs(olds), environment());
  return validation.ok ? validation.value : undefined;
}

function pickInputs(raw: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(INPUT_NAMES.filter((name) => name in raw).map((name) => [name, raw[name]]));
}

function withoutProviderKey(raw: Record<string, unknown>): Record<string, unknown> {
  const { [PROVIDER_KEY]: _provider, ...inputs } = raw;
  return inputs;
}

/**
 * Inputs that name a different drop-in (another host, login or file) replace the resource: an update would leave
 * the old drop-in behind, and the id names them. Values not known yet (preview) cannot be compared and are left out.
 */
export function replacedInputs(previous: NetworkSpec, next: NetworkSpec): string[] {
  const differs = (before: unknown, after: unknown) => !containsUnknown(after) && !isDeepStrictEqual(before, after);
  // The whole connection is the unknown sentinel (a string) when it comes from another resource's output.
  const connection: unknown = next.connection;
  const connectionMoved =
    typeof connection === "object" && (["host", "port", "user"] as const).some((key) => differs(previous.connection[key], next.connection[key]));
  return [
    ...(connectionMoved ? ["connection"] : []),
    ...(["unit", "dropInName"] as const).filter((key) => differs(previous[key], next[key])),
  ];
}

async function applied({ spec, warnings, rollout }: ValidatedInputs): Promise<NetworkState> {
  // The engine reports the plan's capability warnings and skipped host-key checks through onWarning.
  const engineWarnings: string[] = [];
  const result = await applyHost(spec, { onWarning: (warning) => engineWarnings.push(warning) }).catch((error: unknown) => {
    // A fleet cannot see this failure (a failed resource's outputs never resolve): the error itself says where the rollout stands.
    throw rollout && error instanceof Error ? withContextLine(error, describeFailedHost(rollout)) : error;
  });
  return observedOutputs(spec, result, {
    restarted: result.restarted,
    warnings: unique([...warnings, ...engineWarnings]),
    verification: result.verification,
  });
}

/** What both an inspection and an apply learn about the host. */
type Observation = Pick<InspectResult, "host" | "facts" | "running" | "plan" | "dropInSha256">;

function observedOutputs(spec: NetworkSpec, observation: Observation, fromApply: Pick<NetworkOutputs, "restarted" | "warnings" | "verification">): NetworkState {
  const { facts, running } = observation;
  return toStruct({
    ...spec,
    host: observation.host,
    networkDriverInEffect: running.networkDriver,
    portDriverInEffect: running.portDriver,
    ipv6InEffect: running.ipv6,
    mtuInEffect: running.mtu,
    detachNetnsInEffect: running.detachNetns,
    disableHostLoopbackInEffect: running.disableHostLoopback,
    slirp4netnsSandboxInEffect: running.slirp4netnsSandbox,
    slirp4netnsSeccompInEffect: running.slirp4netnsSeccomp,
    extraFlagsInEffect: running.extraFlags,
    versions: facts.versions,
    dropInPath: facts.dropIn.path,
    dropInSha256: observation.dropInSha256,
    invocationId: facts.unit.invocationId,
    compatInUse: compatHelperInstalled(facts),
    ...fromApply,
  });
}

function unique(lines: string[]): string[] {
  return [...new Set(lines)];
}

/**
 * A deep copy that protobuf's `Struct.fromJavaScript` accepts: it rejects `undefined` (also in arrays),
 * which optional fields of parsed results may hold. JSON has exactly the Struct's value space.
 */
function toStruct<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}
