/**
 * Dialing one SSH hop (the target, or the bastion in front of it): host-key check, authentication,
 * and retries of network failures only. Auth and host-key failures are final on the first attempt.
 */
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { Client, utils, type AnyAuthMethod, type ClientChannel, type ConnectConfig, type ParsedKey } from "ssh2";
import { hostLabel } from "../core/label";
import type { ConnectionSpec } from "../core/types";
import { ConnectionError, HostKeyError, type RootlessDockerError } from "../errors";
import { checkHostKey, describeKey, expectedKeyTypes, type HostKeySource } from "./host-keys";
import { recordConnect } from "./trace";

export type HopSpec = Omit<ConnectionSpec, "proxy">;

export interface Hop {
  spec: HopSpec;
  label: string;
  /** The step named in errors: `connect`, `connect via bastion …`, `connect to bastion …`. */
  step: string;
  /** This hop is the bastion (traced with `via: "proxy"`). */
  isProxy: boolean;
  onWarning: (message: string) => void;
}

const FIRST_BACKOFF_MS = 250;
const MAX_BACKOFF_MS = 5_000;
/** Detects a host that vanished without closing the TCP connection, during long commands. */
const KEEPALIVE_INTERVAL_MS = 10_000;
const KEEPALIVE_COUNT_MAX = 3;
/** Failures kept as evidence when retries are unlimited. */
const MAX_EVIDENCE = 20;
const TRANSIENT_SOCKET_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ECONNABORTED", "EHOSTUNREACH", "ENETUNREACH", "ETIMEDOUT", "EPIPE"]);
/** SSH_OPEN_CONNECT_FAILED: the bastion could not reach the target (yet). */
const CHANNEL_OPEN_CONNECT_FAILED = 2;

export { hostLabel };

type Attempt = { client: Client } | { fatal: RootlessDockerError } | { transient: Error };

/** Connects one hop, directly or through an already-connected bastion, retrying as `dialErrorLimit` allows. */
export async function dialHop(hop: Hop, bastion?: Client): Promise<Client> {
  const source = hop.spec.dangerouslySkipHostKeyVerification ? null : hostKeySource(hop);
  const privateKey = parsePrivateKey(hop);
  const maxAttempts = hop.spec.dialErrorLimit < 0 ? Infinity : Math.max(1, hop.spec.dialErrorLimit);
  const failures: string[] = [];
  for (let attempt = 1; ; attempt += 1) {
    const outcome = bastion === undefined ? await attemptOnce(hop, source, privateKey) : await attemptThrough(bastion, hop, source, privateKey);
    if ("client" in outcome) return outcome.client;
    if ("fatal" in outcome) throw outcome.fatal;
    failures.push(`attempt ${attempt}: ${outcome.transient.message}`);
    if (failures.length > MAX_EVIDENCE) failures.shift();
    if (attempt >= maxAttempts) {
      const { host, port, perDialTimeout } = hop.spec;
      throw new ConnectionError(
        `could not open an SSH connection after ${attempt} attempt${attempt === 1 ? "" : "s"} (up to ${perDialTimeout}s each); last error: ${outcome.transient.message}`,
        `check that ${host} is up and sshd listens on port ${port} (try: ssh -p ${port} ${hop.spec.user}@${host}); for hosts that are still booting raise dialErrorLimit or perDialTimeout`,
        { host: hop.label, step: hop.step, evidence: failures, cause: outcome.transient },
      );
    }
    await sleep(Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** (attempt - 1)));
  }
}

function hostKeySource(hop: Hop): HostKeySource {
  if (hop.spec.hostKey !== undefined) return { kind: "pinned", hostKey: hop.spec.hostKey };
  const path = hop.spec.knownHostsPath ?? join(homedir(), ".ssh", "known_hosts");
  try {
    return { kind: "known-hosts", path, text: readFileSync(path, "utf8") };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return { kind: "known-hosts", path, text: null };
    throw new HostKeyError(`cannot read ${path} to check the host key: ${(error as Error).message}; no command was run`, `make ${path} readable, set knownHostsPath, or pin hostKey`, {
      host: hop.label,
      step: hop.step,
      cause: error,
    });
  }
}

async function attemptThrough(bastion: Client, hop: Hop, source: HostKeySource | null, privateKey: ParsedKey | undefined): Promise<Attempt> {
  const { host, port } = hop.spec;
  let stream: ClientChannel;
  try {
    stream = await new Promise<ClientChannel>((resolve, reject) =>
      bastion.forwardOut("127.0.0.1", 0, host, port, (error, channel) => (error ? reject(error) : resolve(channel))),
    );
  } catch (error) {
    if ((error as { reason?: number }).reason === CHANNEL_OPEN_CONNECT_FAILED) return { transient: error as Error };
    return {
      fatal: new ConnectionError(
        `the bastion did not open a tunnel to ${host}:${port}: ${(error as Error).message}`,
        "allow TCP forwarding for this user on the bastion (sshd_config: AllowTcpForwarding yes) and check that the bastion connection is still up",
        { host: hop.label, step: hop.step, cause: error },
      ),
    };
  }
  return attemptOnce(hop, source, privateKey, stream);
}

function attemptOnce(hop: Hop, source: HostKeySource | null, privateKey: ParsedKey | undefined, sock?: ClientChannel): Promise<Attempt> {
  return new Promise((resolve) => {
    const client = new Client();
    let hostKeyRejection: HostKeyError | undefined;
    let settled = false;
    const settle = (attempt: Attempt) => {
      if (settled) return;
      settled = true;
      if (!("client" in attempt)) client.destroy();
      resolve(attempt);
    };
    const hostVerifier = (blob: Buffer): boolean => {
      const offered = describeKey(blob);
      if (source === null) {
        warnSkippedCheck(hop, offered);
        return true;
      }
      const verdict = checkHostKey(blob, source, hop.spec);
      if (verdict.accepted) return true;
      hostKeyRejection = new HostKeyError(verdict.summary, verdict.hint, {
        host: hop.label,
        step: hop.step,
        evidence: [`offered: ${offered.type} ${offered.base64}`, `fingerprint: ${offered.fingerprint}`],
      });
      return false;
    };
    const { spec } = hop;
    const config: ConnectConfig = {
      host: spec.host,
      port: spec.port,
      username: spec.user,
      authHandler: authMethods(spec, privateKey),
      readyTimeout: spec.perDialTimeout * 1000,
      keepaliveInterval: KEEPALIVE_INTERVAL_MS,
      keepaliveCountMax: KEEPALIVE_COUNT_MAX,
      hostVerifier,
      sock,
      ...(source === null ? {} : hostKeyAlgorithms(expectedKeyTypes(source, spec))),
    };
    client
      .on("connect", () => recordConnect(hop.label, hop.isProxy))
      .on("ready", () => settle({ client }))
      .on("error", (error) => settle(classify(hop, error, hostKeyRejection)))
      .on("close", () => settle({ transient: new Error("connection closed during the SSH handshake") }));
    client.connect(config);
  });
}

/**
 * Parsed once per hop: decrypting a key (bcrypt KDF, in JavaScript in ssh2) takes seconds, and the
 * error is about the key, not the network, so it must not be retried. ssh2's messages never include the key.
 */
function parsePrivateKey(hop: Hop): ParsedKey | undefined {
  if (hop.spec.privateKey === undefined) return undefined;
  const parsed = utils.parseKey(hop.spec.privateKey, hop.spec.privateKeyPassword);
  const key = parsed instanceof Error ? parsed : Array.isArray(parsed) ? parsed[0]! : parsed;
  if (!(key instanceof Error) && key.isPrivateKey()) return key;
  const problem = key instanceof Error ? key.message : "it is a public key";
  throw new ConnectionError(
    `the privateKey cannot be used: ${problem}`,
    "privateKey must be an OpenSSH or PEM private key; for an encrypted key set privateKeyPassword to its passphrase",
    { host: hop.label, step: hop.step, cause: key instanceof Error ? key : undefined },
  );
}

/** Keys first, as OpenSSH does; the password also answers keyboard-interactive (PAM-only servers). */
function authMethods(spec: HopSpec, privateKey: ParsedKey | undefined): AnyAuthMethod[] {
  const username = spec.user;
  const agent = agentSocket(spec);
  const { password } = spec;
  const methods: AnyAuthMethod[] = [];
  if (privateKey !== undefined) methods.push({ type: "publickey", username, key: privateKey });
  if (agent !== undefined) methods.push({ type: "agent", username, agent });
  if (password !== undefined) {
    methods.push({ type: "password", username, password });
    methods.push({ type: "keyboard-interactive", username, prompt: (_name, _instructions, _lang, prompts, finish) => finish(prompts.map(() => password)) });
  }
  return methods;
}

function classify(hop: Hop, error: Error & { level?: string; code?: string }, hostKeyRejection: HostKeyError | undefined): Attempt {
  if (hostKeyRejection !== undefined) return { fatal: hostKeyRejection };
  if (error.level === "client-authentication") return { fatal: authenticationError(hop, error) };
  const transient =
    error.level === "client-timeout" ||
    (error.level === "client-socket" && TRANSIENT_SOCKET_CODES.has(error.code ?? "")) ||
    // sshd drops connections beyond MaxStartups, and while it is still starting, before sending its banner.
    error.message === "Connection lost before handshake";
  if (transient) return { transient: error };
  return {
    fatal: new ConnectionError(`the SSH connection failed: ${error.message}`, `check that port ${hop.spec.port} of ${hop.spec.host} is an SSH server`, {
      host: hop.label,
      step: hop.step,
      cause: error,
    }),
  };
}

function authenticationError(hop: Hop, error: Error): ConnectionError {
  const { spec } = hop;
  const methods: string[] = [];
  const fixes: string[] = [];
  if (spec.privateKey !== undefined) {
    methods.push(spec.privateKeyPassword === undefined ? "publickey (privateKey)" : "publickey (privateKey with privateKeyPassword)");
    fixes.push(`the public half of privateKey is in ~${spec.user}/.ssh/authorized_keys`);
  }
  if (spec.password !== undefined) {
    methods.push("password");
    fixes.push("the password is right and sshd allows PasswordAuthentication");
  }
  const agent = agentSocket(spec);
  if (agent !== undefined) {
    methods.push(`agent (${agent})`);
    fixes.push("the agent holds a key that is authorized");
  }
  const hint =
    methods.length === 0
      ? "set privateKey, password or agentSocketPath in the connection"
      : `check that user "${spec.user}" exists on ${spec.host} and that ${fixes.join(", or ")}; reproduce with: ssh -p ${spec.port} ${spec.user}@${spec.host}`;
  return new ConnectionError(`the host refused the login of user "${spec.user}" (tried: ${methods.join(", ") || "none"})`, hint, {
    host: hop.label,
    step: hop.step,
    cause: error,
  });
}

function agentSocket(spec: HopSpec): string | undefined {
  return spec.agentSocketPath ?? (process.env.SSH_AUTH_SOCK || undefined);
}

function warnSkippedCheck(hop: Hop, offered: { type: string; base64: string; fingerprint: string }): void {
  const message =
    `${hop.label}: WARNING: host-key verification is off (dangerouslySkipHostKeyVerification); accepted ${offered.type} ${offered.fingerprint} ` +
    `unchecked, so anyone on the network path could impersonate this host. Pin it with hostKey: "${offered.type} ${offered.base64}"`;
  process.stderr.write(`${message}\n`);
  hop.onWarning(message);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Ask first for the key types we can check (the pinned one, or those known_hosts lists): a host with several keys
 * (Debian makes rsa, ecdsa and ed25519) would otherwise show its ed25519 key, and a known rsa key would never match.
 */
function hostKeyAlgorithms(expectedTypes: string[]): Pick<ConnectConfig, "algorithms"> {
  if (expectedTypes.length === 0) return {};
  const serverHostKey = expectedTypes.flatMap((type) => (type === "ssh-rsa" ? ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"] : [type]));
  return { algorithms: { serverHostKey: serverHostKey as NonNullable<ConnectConfig["algorithms"]>["serverHostKey"] } };
}
