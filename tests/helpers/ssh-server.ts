/**
 * An in-process SSH server on 127.0.0.1 for transport tests: runs exec requests with the local
 * /bin/sh (so only for tests of the transport itself), records what reached it, and can misbehave
 * on purpose (refuse logins, stall authentication, drop connections mid-command).
 */
import { execFileSync, spawn } from "node:child_process";
import { timingSafeEqual } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createConnection, createServer, type Server as NetServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Server, utils, type AuthContext, type Connection, type ParsedKey } from "ssh2";

export interface TestKeyPair {
  /** OpenSSH private key (encrypted when generated with a passphrase). */
  privateKey: string;
  /** OpenSSH public-key line: `ssh-ed25519 AAAA… comment`. */
  publicKey: string;
}

/**
 * Keys come from ssh-keygen, as users' keys do: ssh2 1.17's generateKeyPairSync drops leading zero
 * bytes of the ed25519 public key (about 1 key in 300), writing keys nothing can read back.
 */
export function generateKeyPair(options: { type?: "ed25519" | "rsa"; passphrase?: string; comment?: string } = {}): TestKeyPair {
  const dir = mkdtempSync(join(tmpdir(), "ssh-test-key-"));
  try {
    const path = join(dir, "id");
    // -a 4: few KDF rounds, because ssh2 decrypts in JavaScript (seconds at the default 16).
    const args = ["-q", "-t", options.type ?? "ed25519", "-a", "4", "-N", options.passphrase ?? "", "-C", options.comment ?? "transport-test", "-f", path];
    execFileSync("ssh-keygen", args, { stdio: "ignore" });
    return { privateKey: readFileSync(path, "utf8"), publicKey: readFileSync(`${path}.pub`, "utf8").trim() };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface TestServerOptions {
  /** Logins accepted for this user; default "dev". */
  user?: string;
  /** OpenSSH public-key line accepted for publickey authentication. */
  authorizedKey?: string;
  password?: string;
  /** Reject every login. */
  refuseAuth?: boolean;
  /** Wait this long before answering each authentication request. */
  authDelayMs?: number;
  /** On each exec: send some stdout, then destroy the TCP connection without an exit status. */
  dropConnectionOnExec?: boolean;
  /** On each exec: accept the command and never answer nor end it, as a hung host does (closing the channel is ignored too). */
  hangOnExec?: boolean;
  /** Accept `direct-tcpip` (forwardOut) requests to 127.0.0.1, as a bastion does. */
  allowForwarding?: boolean;
  /** Host key; default a freshly generated ed25519 key. */
  hostKey?: TestKeyPair;
  /** More host keys, as a host with several key types has (the client picks by its algorithm preference). */
  extraHostKeys?: TestKeyPair[];
}

export interface TestSshServer {
  port: number;
  /** The server's host key as an OpenSSH public-key line (no comment). */
  hostPublicKey: string;
  /** TCP connections accepted. */
  readonly connections: number;
  /** TCP connections still open. */
  readonly openConnections: number;
  /** Commands of the exec requests that reached the server, in order. */
  readonly execRequests: string[];
  /** `direct-tcpip` destinations requested (`host:port`). */
  readonly forwards: string[];
  close(): Promise<void>;
}

export async function startSshServer(options: TestServerOptions = {}): Promise<TestSshServer> {
  const hostKey = options.hostKey ?? generateKeyPair({ comment: "" });
  const allowedUser = options.user ?? "dev";
  const authorizedKey = options.authorizedKey === undefined ? undefined : parseKey(options.authorizedKey);
  const sockets = new Set<Socket>();
  const execRequests: string[] = [];
  const forwards: string[] = [];
  /** Channels of hung commands, kept referenced and never ended. */
  const hung: unknown[] = [];
  let connections = 0;

  const ssh = new Server({ hostKeys: [hostKey.privateKey, ...(options.extraHostKeys ?? []).map((key) => key.privateKey)] }, (client: Connection) => {
    client.on("error", () => undefined);
    client.on("authentication", (ctx) => {
      const answer = () => (isAllowed(ctx) ? ctx.accept() : ctx.reject());
      if (options.authDelayMs === undefined) answer();
      // unref: a stalled login must not keep the test process alive after the client gave up.
      else setTimeout(answer, options.authDelayMs).unref();
    });
    client.on("ready", () => {
      client.on("session", (accept) => {
        accept().on("exec", (acceptExec, _reject, info) => {
          execRequests.push(info.command);
          const channel = acceptExec();
          if (options.hangOnExec) {
            hung.push(channel);
            return;
          }
          if (options.dropConnectionOnExec) {
            channel.write("partial output\n");
            // Give the write a moment to leave, then cut the wire as a crashed host would.
            setImmediate(() => sockets.forEach((socket) => socket.destroy()));
            return;
          }
          // Own process group, so closing the channel also kills what the shell started (`sleep` in a timeout test).
          const child = spawn("/bin/sh", ["-c", info.command], { stdio: "pipe", detached: true });
          channel.pipe(child.stdin).on("error", () => undefined);
          child.stdout.pipe(channel, { end: false });
          child.stderr.pipe(channel.stderr, { end: false });
          channel.on("close", () => {
            try {
              process.kill(-child.pid!, "SIGKILL");
            } catch {
              // The group has already exited.
            }
          });
          child.on("close", (code, signal) => {
            if (signal === null) channel.exit(code ?? 0);
            else channel.exit(signal.replace(/^SIG/, ""), false, "");
            channel.end();
          });
        });
      });
      client.on("tcpip", (accept, reject, info) => {
        forwards.push(`${info.destIP}:${info.destPort}`);
        // Loopback only: tests must never reach beyond this machine.
        if (!options.allowForwarding || info.destIP !== "127.0.0.1") return reject();
        const upstream = createConnection(info.destPort, "127.0.0.1");
        upstream.once("connect", () => {
          const channel = accept();
          channel.pipe(upstream).pipe(channel);
          channel.on("error", () => upstream.destroy());
        });
        upstream.once("error", () => reject());
      });
    });
  });

  function isAllowed(ctx: AuthContext): boolean {
    if (options.refuseAuth || ctx.username !== allowedUser) return false;
    if (ctx.method === "password") return options.password !== undefined && safeEqual(ctx.password, options.password);
    if (ctx.method !== "publickey" || authorizedKey === undefined) return false;
    if (ctx.key.algo !== authorizedKey.type || !ctx.key.data.equals(authorizedKey.getPublicSSH())) return false;
    // Without a signature the client only asks whether the key would do; the signature proves possession.
    return ctx.signature === undefined || (ctx.blob !== undefined && authorizedKey.verify(ctx.blob, ctx.signature, ctx.hashAlgo) === true);
  }

  const tcp: NetServer = createServer((socket) => {
    connections += 1;
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    ssh.injectSocket(socket);
  });
  await new Promise<void>((resolve) => tcp.listen(0, "127.0.0.1", resolve));
  const port = (tcp.address() as { port: number }).port;
  const [type, base64] = hostKey.publicKey.split(" ");

  return {
    port,
    hostPublicKey: `${type} ${base64}`,
    get connections() {
      return connections;
    },
    get openConnections() {
      return sockets.size;
    },
    execRequests,
    forwards,
    close: () =>
      new Promise<void>((resolve) => {
        sockets.forEach((socket) => socket.destroy());
        tcp.close(() => resolve());
      }),
  };
}

function parseKey(publicKeyLine: string): ParsedKey {
  const parsed = utils.parseKey(publicKeyLine);
  if (parsed instanceof Error) throw parsed;
  return Array.isArray(parsed) ? parsed[0]! : parsed;
}

function safeEqual(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}
