/**
 * The shapes shared by the pure core, the SSH engine, the Pulumi adapter and the CLI.
 * Pure data: nothing here does I/O, and nothing in core/ imports ssh2 or @pulumi/pulumi.
 */

export const NETWORK_DRIVERS = ["slirp4netns", "pasta", "vpnkit", "lxc-user-nic", "gvisor-tap-vsock"] as const;
export type NetworkDriver = (typeof NETWORK_DRIVERS)[number];

export const PORT_DRIVERS = ["builtin", "slirp4netns", "implicit", "none", "gvisor-tap-vsock"] as const;
export type PortDriver = (typeof PORT_DRIVERS)[number];

export type TriState = "auto" | "true" | "false";

/** The validated connection, the fields of @pulumi/command's remote.ConnectionArgs (1.2.1) plus known_hosts handling. */
export interface ConnectionSpec {
  host: string;
  port: number;
  user: string;
  password?: string;
  privateKey?: string;
  privateKeyPassword?: string;
  agentSocketPath?: string;
  /** Dial attempts before giving up; -1 = unlimited (as @pulumi/command). */
  dialErrorLimit: number;
  /** Seconds per dial attempt. */
  perDialTimeout: number;
  proxy?: Omit<ConnectionSpec, "proxy">;
  /** OpenSSH public-key line (`ssh-ed25519 AAAA…`) or `SHA256:…` fingerprint. */
  hostKey?: string;
  /** Path of a known_hosts file used when no hostKey is pinned (default ~/.ssh/known_hosts). */
  knownHostsPath?: string;
  /** Explicit opt-out of host-key verification; warned about on every use. */
  dangerouslySkipHostKeyVerification?: boolean;
}

export interface VerifyTarget {
  /** IPv6 address (no brackets). */
  address: string;
  /** TCP port to connect to; omitted = ICMP only. */
  tcpPort?: number;
  /** Send ICMPv6 echo (default true). */
  icmp: boolean;
}

export interface VerifySpec {
  /** false = do not verify at all. */
  enabled: boolean;
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

export interface PropertyChange {
  level: DiffLevel;
  /** Input name (`networkDriver`) or variable (`DOCKERD_ROOTLESS_ROOTLESSKIT_NET`). */
  property: string;
  /** undefined = absent / unset. */
  desired?: string;
  actual?: string;
  /** Why, when not obvious: e.g. "overridden by ~/.config/systemd/user/docker.service.d/zz-local.conf". */
  cause?: string;
}

export interface CapabilityProblem {
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

export interface TargetResult {
  address: string;
  tcpPort?: number;
  icmp: boolean | null;
  tcp: boolean | null;
  rttMs: number | null;
}

export interface PathResult {
  /** "namespace" = the RootlessKit network namespace; "container" = a bridge container. */
  path: "namespace" | "container";
  reachable: boolean;
  diagnosis: Diagnosis;
  detail: string;
  addresses: string[];
  defaultRoute: string | null;
  targets: TargetResult[];
}

export interface VerificationResult {
  reachable: boolean;
  icmp: boolean;
  tcp: boolean;
  rttMs: number | null;
  checkedAt: string;
  diagnosis: Diagnosis;
  detail: string;
  paths: PathResult[];
}
