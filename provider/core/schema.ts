/**
 * The public inputs of `RootlessDockerNetwork` (and of the CLI's hosts file), their validation, and the
 * `DOCKERD_ROOTLESS_ROOTLESSKIT_*` environment they turn into. Pure: no I/O.
 */
import { z } from "zod";
import { ipv6Bytes, inPrefix, isPlaceholderTarget, refusedTarget, targetFix } from "./address";
import { closest } from "./suggest";
import { ROLLOUT_NAME, ROLLOUT_NAME_RULE } from "./waves";
import { NETWORK_DRIVERS, PORT_DRIVERS, type NetworkDriver, type NetworkSpec, type PortDriver, type InputProblem, type Validation } from "./types";

/** Pulumi's preview sentinel for values not known yet; such values are not validated. */
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

/** Every variable whose name starts with this belongs to us in our drop-in. */
export const MANAGED_PREFIX = "DOCKERD_ROOTLESS_ROOTLESSKIT_";

/** The variables desiredEnvironment can set: on the effective and running levels only these are compared
 * (the unit may set others of the prefix, such as STATE_DIR, which are not ours to judge). */
export const MANAGED_VARIABLES = ["NET", "PORT_DRIVER", "MTU", "FLAGS", "DISABLE_HOST_LOOPBACK", "DETACH_NETNS", "SLIRP4NETNS_SANDBOX", "SLIRP4NETNS_SECCOMP"].map(
  (suffix) => `${MANAGED_PREFIX}${suffix}`,
);

/** Far above what a healthy host needs (facts ~1 s; an apply with a restart ~10 s), so only a hung host reaches them. */
export const DEFAULT_TIMEOUTS = { factsSeconds: 60, applySeconds: 600 } as const;

/** The input that decides each variable we own, shown beside the variable's name in plans and errors. */
const INPUT_OF_VARIABLE: Record<string, string> = {
  NET: "networkDriver",
  PORT_DRIVER: "portDriver",
  MTU: "mtu",
  FLAGS: "ipv6, extraFlags",
  DISABLE_HOST_LOOPBACK: "disableHostLoopback",
  DETACH_NETNS: "detachNetns",
  SLIRP4NETNS_SANDBOX: "slirp4netnsSandbox",
  SLIRP4NETNS_SECCOMP: "slirp4netnsSeccomp",
};

/** `networkDriver` for DOCKERD_ROOTLESS_ROOTLESSKIT_NET; undefined for anything that is not one of our variables. */
export function inputOfVariable(name: string): string | undefined {
  return name.startsWith(MANAGED_PREFIX) ? INPUT_OF_VARIABLE[name.slice(MANAGED_PREFIX.length)] : undefined;
}

/**
 * The input behind any property a plan row names: our variables, the daemon.json keys (`containerIpv6`), the compat
 * helper and its ExecStartPost= line (`pastaIpv6Compat`), and the running command line's own names (`networkDriver`).
 */
export function inputOfProperty(property: string): string | undefined {
  if (property.startsWith("daemon.json")) return "containerIpv6";
  if (property === "ExecStartPost" || property.startsWith("pastaIpv6Compat")) return "pastaIpv6Compat";
  if (["networkDriver", "portDriver", "mtu", "ipv6"].includes(property)) return property;
  return inputOfVariable(property);
}

/** A public IPv6 anycast DNS resolver: only the default target; tests always name their own. */
const DEFAULT_VERIFY_TARGET = { address: "2606:4700:4700::1111", tcpPort: 53, icmp: true };

/** Docker's official busybox (sh, ip, ping, nc): what `docker pull busybox` gives; the plan checks that it is on the host. */
const DEFAULT_PROBE_IMAGE = "busybox";

/** RootlessKit's own default MTU for the user-mode drivers; the others use 1500 (dockerd-rootless.sh). */
const USER_MODE_DRIVERS: readonly NetworkDriver[] = ["slirp4netns", "pasta", "gvisor-tap-vsock"];

/** RootlessKit flags that a typed input owns, and the input to use instead. */
const OWNED_FLAGS: Record<string, string> = {
  "--net": "networkDriver",
  "--mtu": "mtu",
  "--port-driver": "portDriver",
  "--ipv6": "ipv6",
  "--disable-host-loopback": "disableHostLoopback",
  "--state-dir": "the unit's DOCKERD_ROOTLESS_ROOTLESSKIT_STATE_DIR (not managed here)",
  "--copy-up": "dockerd-rootless.sh (it sets --copy-up itself)",
  "--propagation": "dockerd-rootless.sh (it sets --propagation itself)",
};

// A schema transformer: the public schema uses it as identity; the preview schema lets every value be UNKNOWN.
// Typed as identity on purpose: the preview schema's output differs only where UNKNOWN stands, and such a
// result is never acted on (see validateNetworkArgs).
type Wrap = <T extends z.ZodType>(schema: T) => T;
const exact: Wrap = (schema) => schema;
const orUnknown = ((schema: z.ZodType) => z.union([z.literal(UNKNOWN), schema])) as unknown as Wrap;

const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f]/;

/** A string that reaches a host (file, command line, SSH): bounded, and free of NUL, newlines and other control characters. */
const hostText = (maxLength: number) =>
  z
    .string()
    .min(1, "must not be empty")
    .max(maxLength, `must be at most ${maxLength} characters`)
    .refine((value) => !CONTROL_CHARACTERS.test(value), "must not contain control characters (NUL, newline, tab, …)");

/** ASCII only, so that look-alike letters (Cyrillic `а` for `a`) cannot name a different host or file. */
const asciiName = (pattern: RegExp, maxLength: number, what: string) =>
  z.string().max(maxLength, `must be at most ${maxLength} characters`).regex(pattern, what);

const HOST_KEY_LINE = /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+={0,3}( [\x21-\x7e][\x20-\x7e]*)?$/;
const HOST_KEY_FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}=?$/;
const PRIVATE_KEY = /^-----BEGIN [A-Z0-9 ]+-----\r?\n[\s\S]+\r?\n-----END [A-Z0-9 ]+-----\s*$/;

function connectionFields(wrap: Wrap) {
  return {
    host: wrap(asciiName(/^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$|^[0-9A-Fa-f:.]+(?:%[A-Za-z0-9_.-]+)?$/, 253, "must be a host name or IP address (ASCII letters, digits, '.', '-', ':')")).describe("Address or DNS name of the host (ASCII; IPv6 literals without brackets)."),
    port: wrap(z.number().int().min(1).max(65535).default(22)).describe("SSH port."),
    user: wrap(asciiName(/^[a-z_][a-z0-9_.-]*\$?$/, 32, "must be a POSIX user name (lowercase ASCII letters, digits, '_', '.', '-')")).describe("Login user: the (non-root) user that runs rootless Docker. Required: rootless Docker never runs as root."),
    password: wrap(z.string().max(1024, "must be at most 1024 characters").refine((value) => !/[\0\r\n]/.test(value), "must not contain NUL or newlines")).optional().describe("Password authentication."),
    privateKey: wrap(z.string().max(16384, "must be at most 16384 characters").refine((value) => !value.includes("\0"), "must not contain NUL").regex(PRIVATE_KEY, "must be the text of a private key (-----BEGIN … PRIVATE KEY----- … -----END …-----), not a path")).optional().describe("Private key (OpenSSH or PEM text, not a path)."),
    privateKeyPassword: wrap(z.string().max(1024, "must be at most 1024 characters").refine((value) => !/[\0\r\n]/.test(value), "must not contain NUL or newlines")).optional().describe("Passphrase of `privateKey`."),
    agentSocketPath: wrap(hostText(4096)).optional().describe("Path of an SSH agent socket; default SSH_AUTH_SOCK of the environment, as @pulumi/command does."),
    dialErrorLimit: wrap(z.number().int().min(-1).max(1000).default(10)).describe("Dial attempts before giving up; -1 = unlimited."),
    perDialTimeout: wrap(z.number().int().min(1, "must be at least 1 (@pulumi/command's 0 = no limit is not taken: every step here has a time limit)").max(3600).default(15)).describe("Seconds allowed for each dial attempt."),
    hostKey: wrap(
      z
        .string()
        .max(8192, "must be at most 8192 characters")
        .refine((value) => HOST_KEY_LINE.test(value) || HOST_KEY_FINGERPRINT.test(value), "must be an OpenSSH public-key line (`ssh-ed25519 AAAA…`) or a fingerprint `SHA256:` + 43 base64 characters"),
    ).optional().describe("The host's SSH public key, pinned: an OpenSSH line (`ssh-ed25519 AAAA…`) or a `SHA256:` fingerprint."),
    knownHostsPath: wrap(hostText(4096)).optional().describe("known_hosts file used when no `hostKey` is pinned (default ~/.ssh/known_hosts)."),
    dangerouslySkipHostKeyVerification: wrap(z.boolean()).optional().describe("Skip host-key verification entirely (warned about on every use)."),
  };
}

const triState = (wrap: Wrap) => wrap(z.union([z.enum(["auto", "true", "false"]), z.boolean()])).optional();

/**
 * A target's address: IPv6, and one whose answer proves something under every driver (the driver's own addresses are
 * a cross-field rule). The fix travels in the issue's params, so each refusal says what to write instead.
 */
const targetAddress = z.string().superRefine((address, ctx) => {
  const fix = (reason: string) => ctx.addIssue({ code: "custom", message: reason, params: { fix: "target" } });
  if (isPlaceholderTarget(address)) fix(`is the placeholder "${address}" of a copied example`);
  else if (!z.ipv6().safeParse(address).success) fix("must be an IPv6 address without brackets or zone");
  else {
    const refused = refusedTarget(address, undefined);
    if (refused) fix(refused);
  }
});

function verifyTarget(wrap: Wrap) {
  return z.strictObject({
    address: wrap(targetAddress).describe("IPv6 address to reach (no brackets): one of your own network that proves the host's IPv6 works (not loopback, link-local, multicast, documentation or the driver's own addresses)."),
    tcpPort: wrap(z.number().int().min(1).max(65535)).optional().describe("TCP port to connect to; omitted = ICMP only."),
    icmp: wrap(z.boolean().default(true)).describe("Send an ICMPv6 echo."),
  }).refine((target) => target.icmp !== false || target.tcpPort !== undefined, { message: "checks nothing: set tcpPort, or leave icmp on", path: ["icmp"] });
}

function argsSchema(wrap: Wrap) {
  const connection = z.strictObject({
    ...connectionFields(wrap),
    proxy: wrap(z.strictObject(connectionFields(wrap))).optional().describe("A bastion to reach `host` through (same fields, no nested proxy)."),
  });
  return z.strictObject({
    connection: wrap(connection).describe("How to reach the host over SSH (the fields of @pulumi/command's remote.ConnectionArgs, plus known_hosts handling)."),
    networkDriver: wrap(z.enum(NETWORK_DRIVERS)).describe("RootlessKit network driver (DOCKERD_ROOTLESS_ROOTLESSKIT_NET)."),
    portDriver: wrap(z.enum(PORT_DRIVERS)).optional().describe("RootlessKit port driver (DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER); default implicit with pasta, builtin otherwise."),
    ipv6: wrap(z.boolean().default(false)).describe("Give the RootlessKit namespace IPv6 (`--ipv6` in DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS)."),
    mtu: wrap(z.number().int().min(68).max(65521)).optional().describe("MTU of the namespace; default 65520 for slirp4netns/pasta/gvisor-tap-vsock, 1500 otherwise. Always written (moby#47765)."),
    disableHostLoopback: wrap(z.boolean()).optional().describe("DOCKERD_ROOTLESS_ROOTLESSKIT_DISABLE_HOST_LOOPBACK; unset = the script's default."),
    detachNetns: wrap(z.boolean()).optional().describe("DOCKERD_ROOTLESS_ROOTLESSKIT_DETACH_NETNS; unset = the script's default."),
    slirp4netnsSandbox: triState(wrap).describe("DOCKERD_ROOTLESS_ROOTLESSKIT_SLIRP4NETNS_SANDBOX (auto, true, false); slirp4netns only."),
    slirp4netnsSeccomp: triState(wrap).describe("DOCKERD_ROOTLESS_ROOTLESSKIT_SLIRP4NETNS_SECCOMP (auto, true, false); slirp4netns only."),
    extraFlags: wrap(
      z
        .array(
          wrap(
            z
              .string()
              .max(256, "must be at most 256 characters")
              .regex(/^--[a-z0-9][a-z0-9-]*(=[A-Za-z0-9._:/,@+-]+)?$/, "must be one flag like --name or --name=value (value: letters, digits, . _ : / , @ + -)")
              .superRefine((flag, ctx) => {
                const owner = ownerOfFlag(flag);
                if (owner) ctx.addIssue({ code: "custom", message: `${flag.split("=")[0]} is managed by ${owner}; set that instead` });
              }),
          ),
        )
        .max(32, "must have at most 32 flags")
        .default([]),
    ).describe("More RootlessKit flags, appended to DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS; not those a typed input owns."),
    containerIpv6: wrap(
      z.union([
        z.boolean(),
        z.strictObject({
          fixedCidrV6: wrap(z.cidrv6("must be an IPv6 prefix like fd12:3456:789a:1::/64").refine((cidr) => ipv6Bytes(cidr.split("/")[0]) === null || isUsableContainerPrefix(cidr), "must be a /64 inside fc00::/7 (ULA) and outside fd00::/64, which slirp4netns and pasta use in the namespace")).optional().describe("A /64 ULA (fc00::/7) outside fd00::/64, e.g. fd12:3456:789a:1::/64."),
        }),
      ]),
    ).optional().describe("Manage ~/.config/docker/daemon.json for IPv6 on the default bridge: `true` derives a /64 ULA from the host name."),
    unit: wrap(asciiName(/^[A-Za-z0-9:_.@-]+\.service$/, 100, "must be a unit name like docker.service (ASCII letters, digits, ':', '_', '.', '@', '-')").default("docker.service")).describe("The systemd user unit of rootless Docker."),
    dropInName: wrap(asciiName(/^[A-Za-z0-9_@-][A-Za-z0-9_.@-]*\.conf$/, 100, "must be a bare file name ending in .conf (ASCII letters, digits, '_', '.', '@', '-'; no '/', not starting with '.')").default("override.conf")).describe("File name of our drop-in in ~/.config/systemd/user/UNIT.d/."),
    verify: wrap(
      z
        .strictObject({
          enabled: wrap(z.boolean().default(true)).describe("false = do not verify."),
          targets: wrap(z.array(wrap(verifyTarget(wrap))).min(1, "must name at least one target").max(16).default([DEFAULT_VERIFY_TARGET])).describe("What to reach; default a public IPv6 DNS resolver (TCP 53 and ICMP)."),
          required: wrap(z.boolean().default(false)).describe("Fail (and roll back) the apply when a target is unreachable."),
          timeoutSeconds: wrap(z.number().int().min(1).max(600).default(60)).describe("Total time for retries while router advertisements and DAD settle."),
          image: wrap(asciiName(/^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?$/, 255, "must be an image reference like busybox or name:tag").default(DEFAULT_PROBE_IMAGE)).describe("Image for the bridge-container check (only with containerIpv6): it must be on the host, it is never pulled; the plan refuses a missing one."),
        })
        .default({ enabled: true, targets: [DEFAULT_VERIFY_TARGET], required: false, timeoutSeconds: 60, image: DEFAULT_PROBE_IMAGE }),
    ).describe("Check IPv6 reachability after each apply."),
    restart: wrap(z.enum(["on-change", "never"]).default("on-change")).describe("on-change = restart the daemon when the settings in force differ; never = leave the restart to you."),
    timeouts: wrap(
      z
        .strictObject({
          factsSeconds: wrap(z.number().int().min(5).max(3600).default(DEFAULT_TIMEOUTS.factsSeconds)).describe("Reading the host's state (one exec)."),
          applySeconds: wrap(z.number().int().min(60).max(7200).default(DEFAULT_TIMEOUTS.applySeconds)).describe("The apply, delete or rollback script, its wait for the host lock and for the daemon to come back included (at least 60)."),
          verifySeconds: wrap(z.number().int().min(5).max(7200)).optional().describe("The whole verification exec; default verify.timeoutSeconds per path plus 10 s per target plus 60 s. Must exceed verify.timeoutSeconds."),
        })
        .default(DEFAULT_TIMEOUTS),
    ).describe("Time limits of the remote steps, in seconds; a healthy host never comes near the defaults. On expiry the step fails naming the host, the step and the time waited."),
    pastaIpv6Compat: wrap(z.boolean().default(false)).describe("With pasta + IPv6 on RootlessKit < 2.3.0, install an ExecStartPost helper that gives the namespace IPv6."),
    rollout: wrap(
      z
        .strictObject({
          fleet: wrap(rolloutName),
          host: wrap(rolloutName),
          waves: wrap(z.array(wrap(z.array(wrap(rolloutName)).min(1, "must not hold an empty wave"))).min(1, "must hold at least one wave").max(1000)),
        })
        .refine((rollout) => containsUnknown(rollout) || rollout.waves.some((wave) => wave.includes(rollout.host)), { message: "host must be in one of the waves", path: ["host"] }),
    ).optional().describe("Set by RootlessDockerFleet: this host's place in the rollout, for error messages only (never sent to the host, ignored by diff)."),
  });
}

const rolloutName = asciiName(ROLLOUT_NAME, 253, ROLLOUT_NAME_RULE);

/** The public inputs, exactly as users write them. */
export const networkArgsSchema = argsSchema(exact);
export type NetworkArgs = z.input<typeof networkArgsSchema>;

const previewArgsSchema = argsSchema(orUnknown);

function ownerOfFlag(flag: string): string | undefined {
  const name = flag.split("=")[0];
  if (name.startsWith("--slirp4netns-")) return "slirp4netnsSandbox/slirp4netnsSeccomp (other slirp4netns flags are not supported)";
  return OWNED_FLAGS[name];
}

/** The /64 the daemon's bridge may use: a ULA, and not the namespace's own fd00::/64. */
function isUsableContainerPrefix(cidr: string): boolean {
  const [address, length] = cidr.split("/");
  const bytes = ipv6Bytes(address);
  return length === "64" && bytes !== null && inPrefix(bytes, "fc00::", 7) && !inPrefix(bytes, "fd00::", 64);
}

/** True when the value is, or contains, Pulumi's unknown sentinel. */
export function containsUnknown(value: unknown): boolean {
  if (value === UNKNOWN) return true;
  if (Array.isArray(value)) return value.some(containsUnknown);
  if (typeof value === "object" && value !== null) return Object.values(value).some(containsUnknown);
  return false;
}

/**
 * Validates the raw inputs and applies the defaults. Returns every problem at once, each with its property path.
 * Values equal to UNKNOWN are not validated and skip the cross-field rules they take part in; when the inputs
 * contain UNKNOWN and nothing known is wrong, `value` still holds UNKNOWN at those places: do not act on it.
 * `__provider` (added by Pulumi's dynamic resources) is ignored.
 */
export function validateNetworkArgs(raw: unknown, options: ValidateOptions = {}): Validation<NetworkSpec> {
  const input = withoutPulumiKeys(raw);
  const parsed = previewArgsSchema.safeParse(input);
  const problems = parsed.success ? [] : parsed.error.issues.flatMap((issue) => problemsOf(issue, [], input));
  problems.push(...crossFieldProblems(input, options));
  if (problems.length > 0 || !parsed.success) return { ok: false, problems: dedupe(problems) };
  const spec = toSpec(parsed.data);
  return { ok: true, value: spec, warnings: warningsFor(spec) };
}

function withoutPulumiKeys(raw: unknown): unknown {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return raw;
  const { __provider: _ignored, ...rest } = raw as Record<string, unknown>;
  return rest;
}

export interface ValidateOptions {
  /**
   * The SSH agent socket of the environment (`SSH_AUTH_SOCK`): a connection without a credential uses it, as
   * `@pulumi/command` does, so only a connection with neither is refused.
   */
  sshAuthSock?: string;
}

/** zod's issue → our problems; a union with the UNKNOWN literal reports only the real branch. */
function problemsOf(issue: z.core.$ZodIssue, prefix: PropertyKey[], input: unknown): InputProblem[] {
  const path = [...prefix, ...issue.path];
  if (issue.code === "invalid_union" && issue.errors.length === 2 && isUnknownLiteralBranch(issue.errors[0])) {
    return issue.errors[1].flatMap((inner) => problemsOf(inner, path, input));
  }
  if (issue.code === "unrecognized_keys") {
    return issue.keys.map((key) => {
      const suggestion = closest(key, knownKeys(networkArgsSchema, path));
      return { property: formatPath([...path, key]), reason: "is not a known input", fix: suggestion ? `did you mean "${suggestion}"?` : "check the spelling" };
    });
  }
  if (valueAt(input, path) === undefined) return [{ property: formatPath(path), reason: "required", fix: requiredFix(formatPath(path)) }];
  if (issue.code === "custom" && issue.params?.fix === "target") return [{ property: formatPath(path), reason: issue.message, fix: targetFix(formatPath(path)) }];
  return [{ property: formatPath(path), reason: issue.message }];
}

/** What to write for a required input that is missing. */
function requiredFix(property: string): string {
  if (property === "connection.user" || property === "connection.proxy.user") return `set ${property} to the user that runs rootless Docker (not root)`;
  if (property === "networkDriver") return `set networkDriver to one of ${NETWORK_DRIVERS.join(", ")} (pasta for IPv6 on RootlessKit ≥ 2.0)`;
  if (property === "connection") return "set connection: { host, user, and privateKey, password, agentSocketPath or an SSH agent in SSH_AUTH_SOCK }";
  return `set ${property}`;
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  return path.reduce<unknown>((value, key) => (typeof value === "object" && value !== null ? (value as Record<PropertyKey, unknown>)[key] : undefined), input);
}

/** The keys an object of the schema accepts at `path` (through optional, default, union and array wrappers). */
function knownKeys(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  type Def = { type: string; innerType?: z.core.$ZodType; options?: z.core.$ZodType[]; element?: z.core.$ZodType; in?: z.core.$ZodType; shape?: Record<string, z.core.$ZodType> };
  const defOf = (node: z.core.$ZodType) => node._zod.def as unknown as Def;
  // Objects and arrays, seen through the wrappers around them.
  const structural = (node: z.core.$ZodType): z.core.$ZodType[] => {
    const def = defOf(node);
    if (def.type === "object" || def.type === "array") return [node];
    const inner = def.innerType ?? def.in;
    if (inner) return structural(inner);
    return def.options ? def.options.flatMap(structural) : [];
  };
  let nodes: z.core.$ZodType[] = [schema];
  for (const key of path) {
    nodes = nodes.flatMap(structural).flatMap((node) => {
      const def = defOf(node);
      if (typeof key === "number") return def.element ? [def.element] : [];
      return def.shape?.[String(key)] ? [def.shape[String(key)]] : [];
    });
  }
  return [...new Set(nodes.flatMap(structural).flatMap((node) => Object.keys(defOf(node).shape ?? {})))];
}


function isUnknownLiteralBranch(issues: z.core.$ZodIssue[]): boolean {
  return issues.length === 1 && issues[0].code === "invalid_value" && issues[0].values.length === 1 && issues[0].values[0] === UNKNOWN;
}

/** One line for a problem: the reason, then what to do (for Pulumi's CheckFailure, which has only a reason). */
export function describeProblem(problem: InputProblem): string {
  return problem.fix ? `${problem.reason}: ${problem.fix}` : problem.reason;
}

/** `connection.port`, `extraFlags[1]`, `verify.targets[0].address`. */
export function formatPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((text, key) => (typeof key === "number" ? `${text}[${key}]` : text === "" ? String(key) : `${text}.${String(key)}`), "");
}

function dedupe(problems: InputProblem[]): InputProblem[] {
  const seen = new Set<string>();
  return problems.filter((problem) => {
    const key = `${problem.property}\0${problem.reason}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

// ---------------------------------------------------------------------------------------------
// Cross-field rules (RootlessKit cmd/rootlesskit/main.go). Each reads its fields only when they are known and
// individually valid: an invalid field is already reported, an UNKNOWN one cannot be judged yet.

const SKIP = Symbol("skip");
type Known<T> = T | typeof SKIP;

function knownField<T extends z.ZodType>(raw: unknown, path: string[], schema: T): Known<z.output<T>> {
  let value: unknown = raw;
  for (const key of path) {
    if (value === UNKNOWN) return SKIP;
    value = typeof value === "object" && value !== null ? (value as Record<string, unknown>)[key] : undefined;
  }
  if (containsUnknown(value)) return SKIP;
  const parsed = schema.safeParse(value);
  return parsed.success ? parsed.data : SKIP;
}

function crossFieldProblems(raw: unknown, options: ValidateOptions): InputProblem[] {
  const fields = networkArgsSchema.shape;
  const net = knownField(raw, ["networkDriver"], fields.networkDriver);
  const port = knownField(raw, ["portDriver"], fields.portDriver);
  const ipv6 = knownField(raw, ["ipv6"], fields.ipv6);
  const mtu = knownField(raw, ["mtu"], fields.mtu);
  const compat = knownField(raw, ["pastaIpv6Compat"], fields.pastaIpv6Compat);
  const detach = knownField(raw, ["detachNetns"], fields.detachNetns);
  const extra = knownField(raw, ["extraFlags"], fields.extraFlags);
  const problems: InputProblem[] = [];
  const add = (property: string, reason: string) => problems.push({ property, reason });

  if (net !== SKIP && port !== SKIP && port !== undefined) {
    const allowed = allowedPortDrivers(net);
    if (!allowed.includes(port)) {
      add("portDriver", `portDriver "${port}" does not work with networkDriver "${net}": RootlessKit allows ${allowed.map((d) => `"${d}"`).join(", ")} with ${net}`);
    }
  }
  if (net !== SKIP && ipv6 === true) {
    if (net === "gvisor-tap-vsock") add("ipv6", `ipv6 with networkDriver "gvisor-tap-vsock" is a RootlessKit error: use "slirp4netns" or "pasta" for IPv6`);
    if (net === "vpnkit" || net === "lxc-user-nic") add("ipv6", `ipv6 with networkDriver "${net}" is silently discarded by RootlessKit: use "slirp4netns" or "pasta" for IPv6`);
  }
  if (compat === true && net !== SKIP && ipv6 !== SKIP && (net !== "pasta" || !ipv6)) {
    add("pastaIpv6Compat", `pastaIpv6Compat only applies to networkDriver "pasta" with ipv6: true (got networkDriver "${net}", ipv6 ${ipv6})`);
  }
  // dockerd-rootless.sh before Docker 29.5 does not read DETACH_NETNS: there `--detach-netns` can only come through
  // FLAGS (extraFlags). Both at once would say it twice, possibly with different values.
  if (detach !== SKIP && detach !== undefined && extra !== SKIP && extra.some((flag) => flag.split("=")[0] === "--detach-netns")) {
    add("extraFlags", `--detach-netns in extraFlags and detachNetns set: use one (extraFlags where dockerd-rootless.sh does not read DOCKERD_ROOTLESS_ROOTLESSKIT_DETACH_NETNS, before Docker 29.5)`);
  }
  const verifySeconds = knownField(raw, ["timeouts", "verifySeconds"], fields.timeouts.unwrap().shape.verifySeconds);
  const retrySeconds = knownField(raw, ["verify", "timeoutSeconds"], fields.verify.unwrap().shape.timeoutSeconds);
  if (verifySeconds !== SKIP && verifySeconds !== undefined && retrySeconds !== SKIP && verifySeconds <= retrySeconds) {
    add("timeouts.verifySeconds", `must exceed verify.timeoutSeconds (${retrySeconds}), the time verification keeps retrying: the check would be cut off before it can succeed`);
  }
  // The driver's own addresses: known only once the driver is.
  const targets = knownField(raw, ["verify", "targets"], z.array(z.object({ address: z.string() }).loose()));
  if (net !== SKIP && targets !== SKIP && targets !== undefined) {
    targets.forEach((target, index) => {
      const property = `verify.targets[${index}].address`;
      if (refusedTarget(target.address, undefined) !== null) return; // already refused whatever the driver
      const refused = refusedTarget(target.address, net);
      if (refused) problems.push({ property, reason: `${refused} (networkDriver "${net}")`, fix: targetFix(property) });
    });
  }
  if (ipv6 === true && mtu !== SKIP && mtu !== undefined && mtu < 1280) add("mtu", `mtu ${mtu} is below 1280, the minimum IPv6 needs`);
  if (net !== SKIP && net !== "slirp4netns") {
    for (const name of ["slirp4netnsSandbox", "slirp4netnsSeccomp"] as const) {
      const value = knownField(raw, [name], fields[name]);
      if (value !== SKIP && value !== undefined) add(name, `${name} only applies to networkDriver "slirp4netns" (got "${net}")`);
    }
  }
  if (!options.sshAuthSock) problems.push(...credentialProblems(raw, ["connection"]), ...credentialProblems(raw, ["connection", "proxy"]));
  return problems;
}

/** RootlessKit's valid network × port driver combinations. */
export function allowedPortDrivers(net: NetworkDriver): PortDriver[] {
  switch (net) {
    case "pasta":
      return ["implicit", "none"];
    case "slirp4netns":
      return ["builtin", "slirp4netns", "none"];
    case "gvisor-tap-vsock":
      return ["builtin", "gvisor-tap-vsock", "none"];
    default:
      return ["builtin", "none"];
  }
}

function credentialProblems(raw: unknown, path: string[]): InputProblem[] {
  const connection = path.reduce<unknown>((value, key) => (typeof value === "object" && value !== null ? (value as Record<string, unknown>)[key] : undefined), raw);
  if (typeof connection !== "object" || connection === null) return [];
  const credentials = ["privateKey", "password", "agentSocketPath"].map((name) => (connection as Record<string, unknown>)[name]);
  // An unknown credential may well be set; other unknown fields (host, port) do not take part in this rule.
  if (credentials.some((value) => value !== undefined)) return [];
  return [{ property: path.join("."), reason: "needs a credential", fix: "set privateKey, password or agentSocketPath, or run an SSH agent (SSH_AUTH_SOCK) with the key loaded" }];
}

// ---------------------------------------------------------------------------------------------

type ParsedArgs = z.output<typeof networkArgsSchema>;

function toSpec(args: ParsedArgs): NetworkSpec {
  const tri = (value: ParsedArgs["slirp4netnsSandbox"]) => (value === undefined ? undefined : (String(value) as "auto" | "true" | "false"));
  const container = args.containerIpv6;
  // Optional inputs left out stay absent (not `undefined`): the spec is echoed through Pulumi, which rejects undefined.
  const spec: NetworkSpec = {
    connection: args.connection,
    networkDriver: args.networkDriver,
    portDriver: args.portDriver ?? (args.networkDriver === "pasta" ? "implicit" : "builtin"),
    ipv6: args.ipv6,
    mtu: args.mtu ?? defaultMtu(args.networkDriver),
    disableHostLoopback: args.disableHostLoopback,
    detachNetns: args.detachNetns,
    slirp4netnsSandbox: tri(args.slirp4netnsSandbox),
    slirp4netnsSeccomp: tri(args.slirp4netnsSeccomp),
    extraFlags: args.extraFlags,
    containerIpv6: container === true ? {} : container === false || container === undefined ? undefined : container,
    unit: args.unit,
    dropInName: args.dropInName,
    verify: args.verify,
    restart: args.restart,
    timeouts: args.timeouts,
    pastaIpv6Compat: args.pastaIpv6Compat,
  };
  for (const key of Object.keys(spec) as (keyof NetworkSpec)[]) if (spec[key] === undefined) delete spec[key];
  return spec;
}

export function defaultMtu(net: NetworkDriver): number {
  return USER_MODE_DRIVERS.includes(net) ? 65520 : 1500;
}

function warningsFor(spec: NetworkSpec): string[] {
  const warnings: string[] = [];
  for (const [connection, label] of [[spec.connection, "connection"], [spec.connection.proxy, "connection.proxy"]] as const) {
    if (connection?.dangerouslySkipHostKeyVerification) {
      warnings.push(`${label}.dangerouslySkipHostKeyVerification is set: the host key of ${connection.host} is not checked, so anyone on the path can impersonate it (pin hostKey instead)`);
    }
  }
  if (spec.ipv6 && spec.verify.enabled && spec.verify.targets.some((target) => target.address === DEFAULT_VERIFY_TARGET.address)) {
    warnings.push(`verify.targets defaults to the public resolver ${DEFAULT_VERIFY_TARGET.address}: hosts without Internet access fail verification; name a target of your own`);
  }
  return warnings;
}

/** The DOCKERD_ROOTLESS_ROOTLESSKIT_* variables the spec asks for (the values we own in the drop-in). */
export function desiredEnvironment(spec: NetworkSpec): Record<string, string> {
  const env: Record<string, string> = {
    [`${MANAGED_PREFIX}NET`]: spec.networkDriver,
    [`${MANAGED_PREFIX}PORT_DRIVER`]: spec.portDriver,
    [`${MANAGED_PREFIX}MTU`]: String(spec.mtu),
  };
  const flags = [...(spec.ipv6 ? ["--ipv6"] : []), ...spec.extraFlags];
  if (flags.length > 0) env[`${MANAGED_PREFIX}FLAGS`] = flags.join(" ");
  if (spec.disableHostLoopback !== undefined) env[`${MANAGED_PREFIX}DISABLE_HOST_LOOPBACK`] = String(spec.disableHostLoopback);
  if (spec.detachNetns !== undefined) env[`${MANAGED_PREFIX}DETACH_NETNS`] = String(spec.detachNetns);
  if (spec.slirp4netnsSandbox !== undefined) env[`${MANAGED_PREFIX}SLIRP4NETNS_SANDBOX`] = spec.slirp4netnsSandbox;
  if (spec.slirp4netnsSeccomp !== undefined) env[`${MANAGED_PREFIX}SLIRP4NETNS_SECCOMP`] = spec.slirp4netnsSeccomp;
  return env;
}
