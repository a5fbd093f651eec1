/**
 * `RootlessDockerNetwork`: the RootlessKit networking of one rootless Docker host, as a Pulumi dynamic resource.
 *
 * Type token: `pulumi-nodejs:dynamic:RootlessDockerNetwork` (the dynamic-provider package, no module). Changing
 * it later would need an `aliases` entry in every user's program, so it stays.
 */
import * as pulumi from "@pulumi/pulumi";
import type { NetworkOutputs } from "./dynamic";
import { networkArgsSchema } from "./core/schema";
import type { Rollout } from "./core/waves";
import type { ConnectionSpec, NetworkDriver, PortDriver, TimeLimits, TriState, VerifySpec } from "./core/types";

/** How to reach the host over SSH: the fields of @pulumi/command's `remote.ConnectionArgs`, plus known_hosts handling. */
export interface ConnectionArgs {
  /** Address or DNS name of the host (ASCII; IPv6 literals without brackets). */
  host: pulumi.Input<string>;
  /** SSH port (default 22). */
  port?: pulumi.Input<number>;
  /**
   * Login user: the (non-root) user that runs rootless Docker. Required, though optional in the type (which mirrors
   * `@pulumi/command`'s, where it defaults to root): `check` refuses a connection without it, since rootless Docker
   * never runs as root.
   */
  user?: pulumi.Input<string>;
  /** Password authentication. */
  password?: pulumi.Input<string>;
  /** Private key: the key's text (OpenSSH or PEM), not a path. */
  privateKey?: pulumi.Input<string>;
  /** Passphrase of `privateKey`. */
  privateKeyPassword?: pulumi.Input<string>;
  /** Path of an SSH agent socket; default `SSH_AUTH_SOCK` of the environment, as `@pulumi/command` does. */
  agentSocketPath?: pulumi.Input<string>;
  /** Dial attempts before giving up (default 10); -1 = unlimited. */
  dialErrorLimit?: pulumi.Input<number>;
  /** Seconds allowed for each dial attempt (default 15). */
  perDialTimeout?: pulumi.Input<number>;
  /** The host's SSH public key, pinned: an OpenSSH line (`ssh-ed25519 AAAA…`) or a `SHA256:` fingerprint. */
  hostKey?: pulumi.Input<string>;
  /** known_hosts file used when no `hostKey` is pinned (default ~/.ssh/known_hosts). */
  knownHostsPath?: pulumi.Input<string>;
  /** Skip host-key verification entirely; warned about on every use. Prefer `hostKey`. */
  dangerouslySkipHostKeyVerification?: pulumi.Input<boolean>;
  /** A bastion to reach `host` through (same fields, no nested proxy). */
  proxy?: pulumi.Input<ProxyConnectionArgs>;
}

/** A bastion host: the fields of `ConnectionArgs` without a further proxy. */
export type ProxyConnectionArgs = Omit<ConnectionArgs, "proxy">;

/** One address the host must reach over IPv6 after an apply. */
export interface VerifyTargetArgs {
  /** IPv6 address (no brackets). */
  address: pulumi.Input<string>;
  /** TCP port to connect to; omitted = ICMP only. */
  tcpPort?: pulumi.Input<number>;
  /** Send an ICMPv6 echo (default true). */
  icmp?: pulumi.Input<boolean>;
}

/** How IPv6 reachability is checked after each apply. */
export interface VerifyArgs {
  /** false = do not verify (default true). */
  enabled?: pulumi.Input<boolean>;
  /** What to reach (default a public IPv6 DNS resolver, TCP 53 and ICMP: name your own on hosts without Internet access). */
  targets?: pulumi.Input<pulumi.Input<VerifyTargetArgs>[]>;
  /** Fail the apply, and restore the previous settings, when a target is unreachable (default false). */
  required?: pulumi.Input<boolean>;
  /** Total time for retries while router advertisements and DAD settle (default 60). */
  timeoutSeconds?: pulumi.Input<number>;
  /**
   * Image for the bridge-container check (only with `containerIpv6`), default "busybox". It must be on the host
   * (`docker pull busybox` as the user): it is never pulled, and the plan refuses a missing one before any change.
   */
  image?: pulumi.Input<string>;
}

/** Time limits of the remote steps, in seconds; on expiry the step fails naming the host, the step and the time waited. */
export interface TimeoutsArgs {
  /** Reading the host's state (default 60). */
  factsSeconds?: pulumi.Input<number>;
  /** The apply, delete or rollback script, including its wait for the host lock and for the daemon to come back (default 600, at least 60). */
  applySeconds?: pulumi.Input<number>;
  /** The whole verification (default: verify.timeoutSeconds per path plus time for each probe); must exceed verify.timeoutSeconds. */
  verifySeconds?: pulumi.Input<number>;
}

/** IPv6 for containers on the default bridge (~/.config/docker/daemon.json). */
export interface ContainerIpv6Args {
  /** A /64 ULA (fc00::/7) outside fd00::/64, e.g. fd12:3456:789a:1::/64; omitted = derived from the host name. */
  fixedCidrV6?: pulumi.Input<string>;
}

/** The inputs of a `RootlessDockerNetwork`: how to reach the host and how its rootless Docker is networked (see the README's "Inputs"). */
export interface RootlessDockerNetworkArgs {
  /** How to reach the host over SSH. Stored as a secret. */
  connection: pulumi.Input<ConnectionArgs>;
  /** RootlessKit network driver (DOCKERD_ROOTLESS_ROOTLESSKIT_NET). */
  networkDriver: pulumi.Input<NetworkDriver>;
  /** RootlessKit port driver (DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER); default implicit with pasta, builtin otherwise. */
  portDriver?: pulumi.Input<PortDriver>;
  /** Give the RootlessKit namespace IPv6 (`--ipv6` in DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS); default false. */
  ipv6?: pulumi.Input<boolean>;
  /** MTU of the namespace; default 65520 for slirp4netns, pasta and gvisor-tap-vsock, 1500 otherwise. Always written (moby#47765). */
  mtu?: pulumi.Input<number>;
  /** DOCKERD_ROOTLESS_ROOTLESSKIT_DISABLE_HOST_LOOPBACK; unset = the script's default. */
  disableHostLoopback?: pulumi.Input<boolean>;
  /** DOCKERD_ROOTLESS_ROOTLESSKIT_DETACH_NETNS; unset = the script's default. */
  detachNetns?: pulumi.Input<boolean>;
  /** DOCKERD_ROOTLESS_ROOTLESSKIT_SLIRP4NETNS_SANDBOX; slirp4netns only. */
  slirp4netnsSandbox?: pulumi.Input<TriState | boolean>;
  /** DOCKERD_ROOTLESS_ROOTLESSKIT_SLIRP4NETNS_SECCOMP; slirp4netns only. */
  slirp4netnsSeccomp?: pulumi.Input<TriState | boolean>;
  /** More RootlessKit flags (`--name` or `--name=value`), appended to DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS; not those a typed input owns. */
  extraFlags?: pulumi.Input<pulumi.Input<string>[]>;
  /** Manage daemon.json for IPv6 on the default bridge: `true` derives a /64 ULA from the host name. */
  containerIpv6?: pulumi.Input<boolean | ContainerIpv6Args>;
  /** The systemd user unit of rootless Docker (default "docker.service"). */
  unit?: pulumi.Input<string>;
  /** File name of our drop-in in ~/.config/systemd/user/UNIT.d/ (default "override.conf"). */
  dropInName?: pulumi.Input<string>;
  /** Check IPv6 reachability after each apply. */
  verify?: pulumi.Input<VerifyArgs>;
  /** "on-change" (default) restarts the daemon when the settings in force differ; "never" leaves the restart to you. */
  restart?: pulumi.Input<"on-change" | "never">;
  /** Time limits of the remote steps. */
  timeouts?: pulumi.Input<TimeoutsArgs>;
  /** With pasta and IPv6 on RootlessKit < 2.3.0, install an ExecStartPost helper that gives the namespace IPv6 (default false). */
  pastaIpv6Compat?: pulumi.Input<boolean>;
  /**
   * Set by `RootlessDockerFleet`, not meant to be set by hand: this host's place in the fleet's waves, so that its
   * failure says which hosts are done, failed and untouched. Never sent to the host; a change of it alone changes nothing.
   */
  rollout?: pulumi.Input<Rollout>;
}

/**
 * The installed provider, required by name at call time. Inside this package's own checkout (the repository's root
 * Pulumi project) the package is not in node_modules: the dynamic-provider host runs with the project directory as
 * its cwd, so the compiled provider is taken from there.
 */
function installedProvider(): pulumi.dynamic.ResourceProvider {
  try {
    return require("pulumi-rootless-docker/dynamic").provider;
  } catch (error) {
    const root = process.cwd();
    if ((error as { code?: string }).code !== "MODULE_NOT_FOUND" || require(`${root}/package.json`).name !== "pulumi-rootless-docker") throw error;
    return require(`${root}/dist/provider/dynamic.js`).provider;
  }
}

/**
 * The provider Pulumi serializes into the state. Each method loads the installed package at call time: it captures
 * nothing (no credentials, no module objects), so a state written by any version runs the current code.
 * @internal
 */
export const providerShim: pulumi.dynamic.ResourceProvider = {
  check: (olds, news) => installedProvider().check!(olds, news),
  diff: (id, olds, news) => installedProvider().diff!(id, olds, news),
  create: (inputs) => installedProvider().create(inputs),
  read: (id, props) => installedProvider().read!(id, props),
  update: (id, olds, news) => installedProvider().update!(id, olds, news),
  delete: (id, props) => installedProvider().delete!(id, props),
};

const OUTPUT_NAMES: readonly (keyof NetworkOutputs)[] = [
  "host",
  "networkDriverInEffect",
  "portDriverInEffect",
  "ipv6InEffect",
  "mtuInEffect",
  "detachNetnsInEffect",
  "disableHostLoopbackInEffect",
  "slirp4netnsSandboxInEffect",
  "slirp4netnsSeccompInEffect",
  "extraFlagsInEffect",
  "versions",
  "dropInPath",
  "dropInSha256",
  "restarted",
  "invocationId",
  "compatInUse",
  "warnings",
  "verification",
];

/** Every property name: a CustomResource creates an output property only for the keys it is given. */
const PROPERTY_NAMES = [...Object.keys(networkArgsSchema.shape), ...OUTPUT_NAMES];

/**
 * Declares the RootlessKit networking of a rootless Docker host (a systemd user drop-in with
 * `DOCKERD_ROOTLESS_ROOTLESSKIT_*` variables), applies it over SSH, restarts the daemon when what runs differs,
 * and verifies IPv6 reachability. Preview and refresh compare with the live host.
 *
 * Outputs echo every input with its defaults applied (`connection` as a secret) plus what the host has in force.
 */
export class RootlessDockerNetwork extends pulumi.dynamic.Resource {
  /** The SSH connection, with defaults applied (secret). */
  declare readonly connection: pulumi.Output<ConnectionSpec>;
  declare readonly networkDriver: pulumi.Output<NetworkDriver>;
  declare readonly portDriver: pulumi.Output<PortDriver>;
  declare readonly ipv6: pulumi.Output<boolean>;
  declare readonly mtu: pulumi.Output<number>;
  /** Unset when not declared. */
  declare readonly disableHostLoopback: pulumi.Output<boolean | undefined>;
  /** Unset when not declared. */
  declare readonly detachNetns: pulumi.Output<boolean | undefined>;
  declare readonly slirp4netnsSandbox: pulumi.Output<TriState | undefined>;
  declare readonly slirp4netnsSeccomp: pulumi.Output<TriState | undefined>;
  declare readonly extraFlags: pulumi.Output<string[]>;
  /** Unset when daemon.json is not managed; `{}` when the prefix is derived from the host name. */
  declare readonly containerIpv6: pulumi.Output<{ fixedCidrV6?: string } | undefined>;
  declare readonly unit: pulumi.Output<string>;
  declare readonly dropInName: pulumi.Output<string>;
  declare readonly verify: pulumi.Output<VerifySpec>;
  declare readonly restart: pulumi.Output<"on-change" | "never">;
  declare readonly timeouts: pulumi.Output<TimeLimits>;
  declare readonly pastaIpv6Compat: pulumi.Output<boolean>;

  /** `user@host:port` of the host. */
  declare readonly host: pulumi.Output<NetworkOutputs["host"]>;
  /** Network driver of the running RootlessKit; null when no daemon runs. */
  declare readonly networkDriverInEffect: pulumi.Output<NetworkOutputs["networkDriverInEffect"]>;
  /** Port driver of the running RootlessKit; null when no daemon runs or it names none. */
  declare readonly portDriverInEffect: pulumi.Output<NetworkOutputs["portDriverInEffect"]>;
  /** The running RootlessKit has `--ipv6`. */
  declare readonly ipv6InEffect: pulumi.Output<NetworkOutputs["ipv6InEffect"]>;
  /** MTU of the running RootlessKit; null when not on its command line. */
  declare readonly mtuInEffect: pulumi.Output<NetworkOutputs["mtuInEffect"]>;
  /** The running RootlessKit has `--detach-netns`. */
  declare readonly detachNetnsInEffect: pulumi.Output<NetworkOutputs["detachNetnsInEffect"]>;
  /** The running RootlessKit has `--disable-host-loopback`. */
  declare readonly disableHostLoopbackInEffect: pulumi.Output<NetworkOutputs["disableHostLoopbackInEffect"]>;
  /** `--slirp4netns-sandbox` of the running RootlessKit; null when not on its command line. */
  declare readonly slirp4netnsSandboxInEffect: pulumi.Output<NetworkOutputs["slirp4netnsSandboxInEffect"]>;
  /** `--slirp4netns-seccomp` of the running RootlessKit; null when not on its command line. */
  declare readonly slirp4netnsSeccompInEffect: pulumi.Output<NetworkOutputs["slirp4netnsSeccompInEffect"]>;
  /** The running RootlessKit's flags beyond the script's own and the typed inputs'. */
  declare readonly extraFlagsInEffect: pulumi.Output<NetworkOutputs["extraFlagsInEffect"]>;
  /** rootlesskit, pasta, slirp4netns and dockerd versions on the host (null = missing). */
  declare readonly versions: pulumi.Output<NetworkOutputs["versions"]>;
  /** Absolute path of the drop-in on the host. */
  declare readonly dropInPath: pulumi.Output<NetworkOutputs["dropInPath"]>;
  /** sha256 of the drop-in on the host; null when it does not exist. */
  declare readonly dropInSha256: pulumi.Output<NetworkOutputs["dropInSha256"]>;
  /** The last apply restarted the daemon. */
  declare readonly restarted: pulumi.Output<NetworkOutputs["restarted"]>;
  /** systemd InvocationID of the running unit (changes on every restart). */
  declare readonly invocationId: pulumi.Output<NetworkOutputs["invocationId"]>;
  /** The pasta IPv6 compat helper is in use. */
  declare readonly compatInUse: pulumi.Output<NetworkOutputs["compatInUse"]>;
  /** Capability and security warnings of the last apply or refresh. */
  declare readonly warnings: pulumi.Output<NetworkOutputs["warnings"]>;
  /** IPv6 reachability found by the last apply (`namespace`, `container`, and `covers`: what `reachable` speaks for); null when verification is disabled. */
  declare readonly verification: pulumi.Output<NetworkOutputs["verification"]>;

  constructor(name: string, args: RootlessDockerNetworkArgs, opts?: pulumi.CustomResourceOptions) {
    const props: Record<string, unknown> = {
      ...Object.fromEntries(PROPERTY_NAMES.map((property) => [property, undefined])),
      ...args,
      connection: pulumi.secret(args.connection),
    };
    // `connection` holds credentials: keep it secret in the outputs whatever the engine does with inputs.
    const additionalSecretOutputs = [...(opts?.additionalSecretOutputs ?? []), "connection"];
    super(providerShim, name, props, { ...opts, additionalSecretOutputs }, undefined, "RootlessDockerNetwork");
  }
}
