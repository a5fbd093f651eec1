/**
 * The shapes shared by the pure core, the SSH engine, the Pulumi adapter and the CLI.
 * Pure data: nothing here does I/O, and nothing in core/ imports ssh2 or @pulumi/pulumi.
 */

/** Every RootlessKit network driver (`DOCKERD_ROOTLESS_ROOTLESSKIT_NET`), as `networkDriver` accepts them. */
export const NETWORK_DRIVERS = ["slirp4netns", "pasta", "vpnkit", "lxc-user-nic", "gvisor-tap-vsock"] as const;
/** A RootlessKit network driver: one of `NETWORK_DRIVERS`. */
export type NetworkDriver = (typeof NETWORK_DRIVERS)[number];

/** Every RootlessKit port driver (`DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER`), as `portDriver` accepts them. */
export const PORT_DRIVERS = ["builtin", "slirp4netns", "implicit", "none", "gvisor-tap-vsock"] as const;
/** A RootlessKit port driver: one of `PORT_DRIVERS`. */
export type PortDriver = (typeof PORT_DRIVERS)[number];

/** The values of RootlessKit's `--slirp4netns-sandbox` and `--slirp4netns-seccomp`. */
export type TriState = "auto" | "true" | "false";

/** The validated connection, the fields of @pulumi/command's remote.ConnectionArgs (1.2.1) plus known_hosts handling. */
export interface ConnectionSpec {
  /** Host name or address of the SSH server. */
  host: string;
  /** SSH port (default 22). */
  port: number;
  /** The non-root user that runs rootless Docker. */
  user: string;
  /** Password authentication (secret). */
  password?: string;
  /** Private key text, OpenSSH or PEM (secret). */
  privateKey?: string;
  /** Passphrase of `privateKey` (secret). */
  privateKeyPassword?: string;
  /** SSH agent socket; the default is `SSH_AUTH_SOCK`, and an agent alone is enough. */
  agentSocketPath?: string;
  /** Dial attempts before giving up; -1 = unlimited (as @pulumi/command). */
  dialErrorLimit: number;
  /** Seconds per dial attempt. */
  perDialTimeout: number;
  /** A bastion to connect through, checked the same way (its own host key). */
  proxy?: Omit<ConnectionSpec, "proxy">;
  /** OpenSSH public-key line (`ssh-ed25519 AAAA…`) or `SHA256:…` fingerprint. */
  hostKey?: string;
  /** Path of a known_hosts file used when no hostKey is pinned (default ~/.ssh/known_hosts). */
  knownHostsPath?: string;
  /** Explicit opt-out of host-key verification; warned about on every use. */
  dangerouslySkipHostKeyVerification?: boolean;
}

/** An address every host must reach after an apply, checked from the RootlessKit namespace. */
export interface VerifyTarget {
  /** IPv6 address (no brackets). */
  address: string;
  /** TCP port to connect to; omitted = ICMP only. */
  tcpPort?: number;
  /** Send ICMPv6 echo (default true). */
  icmp: boolean;
}

/** What to check after each apply, and whether a failure rolls it back. */
export interface VerifySpec {
  /** false = do not verify at all. */
  enabled: boolean;
  /** The addresses to reach (all of them must answer). */
  targets: VerifyTarget[];
  /** Fail (and roll back) the apply when a target is unreachable. */
  required: boolean;
  /** Total time allowed for retries while RA/DAD settle. */
  timeoutSeconds: number;
  /** Image for the bridge-container check (`docker run --pull=never`). */
  image: string;
}

/** The desired state, validated and with defaults applied. */
export interface NetworkSpec {
  connection: ConnectionSpec;
  networkDriver: NetworkDriver;
  portDriver: PortDriver;
  ipv6: boolean;
  mtu: number;
  disableHostLoopback?: boolean;
  detachNetns?: boolean;
  slirp4netnsSandbox?: TriState;
  slirp4netnsSeccomp?: TriState;
  extraFlags: string[];
  /** undefined = daemon.json is not managed. */
  containerIpv6?: { fixedCidrV6?: string };
  unit: string;
  dropInName: string;
  verify: VerifySpec;
  restart: "on-change" | "never";
  timeouts: TimeLimits;
  pastaIpv6Compat: boolean;
}

/** Time limits of the remote execs, in seconds. */
export interface TimeLimits {
  /** Reading the host (the facts script). */
  factsSeconds: number;
  /** Apply, delete and rollback scripts (lock wait and daemon start included). */
  applySeconds: number;
  /** undefined = derived from verify.timeoutSeconds and the number of targets and paths. */
  verifySeconds?: number;
}

/** A problem found by `check`, with the property path it concerns (`portDriver`, `connection.port`, `extraFlags[1]`). */
export interface InputProblem {
  /** Where the problem is written: `connection.port`, `defaults.networkDriver`, `hosts[2].verify.targets[0].address`. */
  property: string;
  /** What is wrong, e.g. `required`, `is not a known input`. */
  reason: string;
  /** What to do, when there is more to say than the reason: `did you mean "networkDriver"?`. */
  fix?: string;
  /** The hosts-file entry the problem concerns (absent for `defaults` and for the file as a whole). */
  host?: string;
}

export type Validation<T> = { ok: true; value: T; warnings: string[] } | { ok: false; problems: InputProblem[] };

// ---------------------------------------------------------------------------------------------
// Facts: everything one remote exec learns about a host.

export interface DropInFile {
  path: string;
  content: string;
}

export interface UnitFileOnDisk {
  kind: "fragment" | "dropin";
  path: string;
  /** null = a symlink to /dev/null (masked); "" also for a file that could not be read. */
  content: string | null;
}

export interface UnitState {
  /** LoadState=loaded */
  loaded: boolean;
  activeState: string;
  subState: string;
  execMainPID: number;
  invocationId: string;
  needDaemonReload: boolean;
  /** The merged `Environment=` of the unit and all its drop-ins, as systemd sees it now. */
  environment: Record<string, string>;
  dropInPaths: string[];
  fragmentPath: string;
  /** ExecMainStartTimestamp as printed by systemctl (for wave ordering evidence). */
  startedAt: string;
}

export interface RunningDaemon {
  /** argv of the running rootlesskit process (child of ExecMainPID); null when none runs. */
  rootlesskitArgv: string[] | null;
  /** DOCKERD_ROOTLESS_* variables in the environment of the running unit's main process. */
  environment: Record<string, string>;
  pastaArgv: string[] | null;
  slirp4netnsArgv: string[] | null;
  /** PID of the RootlessKit child (namespace holder), from $STATE_DIR/child_pid. */
  childPid: number | null;
}

export interface HostFacts {
  user: string;
  uid: number;
  home: string;
  xdgRuntimeDir: string;
  /** `systemctl --user` answered. */
  userManager: boolean;
  linger: boolean;
  /** net.ipv4.ping_group_range of the host, [low, high]; null when unreadable. */
  pingGroupRange: [number, number] | null;
  /**
   * The host's own IPv6 network, as /proc/net shows it to the login: its global (and ULA) addresses and the gateways
   * of its IPv6 default routes, in RFC 5952 form; empty when not reported. A verification target must be neither.
   */
  hostIpv6: { addresses: string[]; defaultGateways: string[] };
  /** Our drop-in; content null when the file does not exist. */
  dropIn: { path: string; content: string | null };
  /** The user manager's unit search path (its UnitPath), highest priority first. */
  unitPath: string[];
  /**
   * Every unit file (`fragment`) and drop-in of the unit on disk under that path, ours included, in search-path
   * order: what the next daemon-reload loads (sources.ts applies systemd's masking and ordering).
   */
  unitFiles: UnitFileOnDisk[];
  /** The files `EnvironmentFile=` lines name, as found on disk (content: only the lines of our variables; null = missing). */
  environmentFiles: { path: string; content: string | null }[];
  /** Our variables in the user manager's environment (`systemctl --user show-environment`), which every unit inherits. */
  managerEnvironment: Record<string, string>;
  /** environment.d files that set our variables (their lines only): where the manager's environment comes from. */
  environmentD: DropInFile[];
  /** The program the unit's ExecStart runs, and its text when it is a script (dockerd-rootless.sh). */
  execStart: { path: string | null; script: string | null };
  unit: UnitState;
  running: RunningDaemon;
  versions: { rootlesskit: string | null; pasta: string | null; slirp4netns: string | null; dockerd: string | null };
  /** Absolute path of each binary on the unit's PATH, null when missing. */
  binaries: Record<"rootlesskit" | "pasta" | "slirp4netns" | "vpnkit" | "lxc-user-nic" | "nsenter", string | null>;
  daemonJson: { path: string; content: string | null };
  compatScript: { path: string; content: string | null };
  /** The verification's container image, when one will be used: on the host (true), not (false), or unknown (null: no daemon to ask). */
  probeImage?: { image: string; present: boolean | null };
}

// ---------------------------------------------------------------------------------------------
// Plan: the pure comparison of a NetworkSpec with HostFacts.

export type DiffLevel = "file" | "effective" | "running";

/** One setting that differs between what is declared and what the host has, at one level. */
export interface PropertyChange {
  /** `file`: our drop-in's text; `effective`: what systemd would give the unit now; `running`: what the running RootlessKit has. */
  level: DiffLevel;
  /** Input name (`networkDriver`) or variable (`DOCKERD_ROOTLESS_ROOTLESSKIT_NET`). */
  property: string;
  /** undefined = absent / unset. */
  desired?: string;
  /** The host's value at this level; undefined = absent / unset. */
  actual?: string;
  /** Why, when not obvious: e.g. "overridden by ~/.config/systemd/user/docker.service.d/zz-local.conf". */
  cause?: string;
}

/** Something the host lacks or does that an apply must know: an error blocks the apply before anything is written, a warning does not. */
export interface CapabilityProblem {
  /** `error`: the apply is refused on this host; `warning`: it goes ahead. */
  severity: "error" | "warning";
  /** What was found and what is needed, e.g. "rootlesskit 2.0.2 starts pasta without IPv6; needs ≥ 2.3.0". */
  message: string;
  /** What to do, e.g. "set pastaIpv6Compat: true, or upgrade rootlesskit". */
  hint: string;
}

export interface FileWrite {
  path: string;
  /** New content; null = remove the file. */
  content: string | null;
  mode: number;
}

export interface HostPlan {
  changes: PropertyChange[];
  problems: CapabilityProblem[];
  /** Files to write, in order (drop-in, daemon.json, compat helper). Empty = nothing to write. */
  writes: FileWrite[];
  daemonReload: boolean;
  restart: boolean;
  /** The pasta IPv6 compat helper is (or will be) in use. */
  compatInUse: boolean;
  /** true when anything differs at any level (what `diff` reports as `changes`). */
  differs: boolean;
  /** Why the apply runs `systemctl --user daemon-reload`, or why it does not. */
  daemonReloadReason: string;
  /** Why the apply restarts the daemon, or why not (e.g. "file written but the running daemon already matches: no restart"). */
  restartReason: string;
}

// ---------------------------------------------------------------------------------------------
// Verification.

/** Every diagnosis a verification can give, in the order the README's "Diagnoses" table lists them (a test compares the two). */
export const DIAGNOSES = [
  "reachable",
  "no-global-ipv6-address",
  "no-default-route",
  "icmp-blocked-by-ping-group-range",
  "target-unreachable",
  "daemon-not-running",
  "probe-image-missing",
  /** The check could not finish (time limit, lost connection): nothing is known about reachability. */
  "verification-unfinished",
] as const;
/** Why a verification path (or the whole verification) is reachable or not; see `DIAGNOSES`. */
export type Diagnosis = (typeof DIAGNOSES)[number];

/** What one target answered from one path. */
export interface TargetResult {
  /** The target's IPv6 address. */
  address: string;
  /** The TCP port tried; absent for an ICMP-only target. */
  tcpPort?: number;
  /** An ICMPv6 echo was answered; null when not tried. */
  icmp: boolean | null;
  /** The TCP connection succeeded; null when not tried. */
  tcp: boolean | null;
  /** Round-trip time of the echo in milliseconds; null without an answer. */
  rttMs: number | null;
}

/** The verification from one place: the RootlessKit namespace, or a bridge container. */
export interface PathResult {
  /** "namespace" = the RootlessKit network namespace; "container" = a bridge container. */
  path: "namespace" | "container";
  /** Every target answered from this path. */
  reachable: boolean;
  /** Why it is reachable or not (see `DIAGNOSES` and the README's "Diagnoses"). */
  diagnosis: Diagnosis;
  /** What was seen, in words (the address found, the target that did not answer, …). */
  detail: string;
  /** The global IPv6 addresses of the path's interface. */
  addresses: string[];
  /** Its IPv6 default route; null when there is none. */
  defaultRoute: string | null;
  /** Each target's answers. */
  targets: TargetResult[];
}

/**
 * What `reachable` covers: `namespace` = the RootlessKit network namespace only (no bridge container is probed without
 * `containerIpv6`), `namespace+container` = the namespace and a bridge container.
 */
export type VerificationCoverage = "namespace" | "namespace+container";

/** The IPv6 check of one host: reachable only when every target answered from every path. */
export interface VerificationResult {
  /** Every target answered from every path that `covers` names. */
  reachable: boolean;
  /** The places `reachable` speaks for. */
  covers: VerificationCoverage;
  /** The verification from the RootlessKit network namespace. */
  namespace: PathResult;
  /** The verification from a bridge container; null = not probed (`containerIpv6` is not managed). */
  container: PathResult | null;
  /** ICMPv6 echoes were sent and every one was answered. */
  icmp: boolean;
  /** TCP connections were tried and every one succeeded. */
  tcp: boolean;
  /** The slowest echo's round-trip time in milliseconds; null without one. */
  rttMs: number | null;
  /** When the check ran (ISO 8601, UTC, seconds). */
  checkedAt: string;
  /** The first failing path's diagnosis, or `reachable`. */
  diagnosis: Diagnosis;
  /** What was seen, in words. */
  detail: string;
  /** `namespace`, then `container` when probed: the same results as a list. */
  paths: PathResult[];
}
