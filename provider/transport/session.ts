/**
 * One SSH connection (optionally through a bastion) that runs many commands. Commands are never
 * retried here: a lost connection is reported, and the caller decides (it may have half-run).
 */
import type { Client, ClientChannel } from "ssh2";
import type { ConnectionSpec } from "../core/types";
import { ConnectionError, RemoteTimeoutError } from "../errors";
import { dialHop, hostLabel } from "./connect";
import { recordExec } from "./trace";

export interface ExecOptions {
  stdin?: string | Buffer;
  /** Close the channel and fail with RemoteTimeoutError after this long; default: no limit. */
  timeoutMs?: number;
  /** The step named in errors (`gather facts`, `apply`); default "run remote command". */
  step?: string;
  /** What to do when the time limit is reached, e.g. which setting raises it. */
  timeoutHint?: string;
}

export interface ExecResult {
  /** null when the command was killed by a signal; `signal` then names it (`SIGTERM`). */
  exitCode: number | null;
  signal?: string;
  stdout: string;
  stderr: string;
}

export interface SshSession {
  /** `user@host:port` of the target host. */
  readonly label: string;
  /** Resolves on any exit code; rejects only when the command could not run to its end. */
  exec(command: string, options?: ExecOptions): Promise<ExecResult>;
  close(): void;
}

export interface SessionOptions {
  /** Receives each warning (host-key checks skipped); they also go to stderr. */
  onWarning?: (message: string) => void;
}

const STEP = "run remote command";

/** Opens one connection (dialing the bastion first when `proxy` is set); host keys are checked before any command. */
export async function openSession(conn: ConnectionSpec, opts: SessionOptions = {}): Promise<SshSession> {
  const label = hostLabel(conn);
  const onWarning = opts.onWarning ?? (() => undefined);
  if (conn.proxy === undefined) {
    return new Ssh2Session(label, await dialHop({ spec: conn, label, step: "connect", isProxy: false, onWarning }), []);
  }
  const bastionLabel = hostLabel(conn.proxy);
  const bastion = await dialHop({ spec: conn.proxy, label: bastionLabel, step: `connect to bastion for ${label}`, isProxy: true, onWarning });
  try {
    const target = await dialHop({ spec: conn, label, step: `connect via bastion ${bastionLabel}`, isProxy: false, onWarning }, bastion);
    return new Ssh2Session(label, target, [bastion]);
  } catch (error) {
    bastion.end();
    throw error;
  }
}

class Ssh2Session implements SshSession {
  private closed = false;
  /** Why the connection ended, once it has. */
  private lost: Error | undefined;
  /** Fails the commands still running when the connection goes. */
  private readonly running = new Set<(cause: Error) => void>();

  constructor(
    readonly label: string,
    private readonly client: Client,
    private readonly hops: Client[],
  ) {
    client.on("error", (error) => this.lose(error));
    client.on("close", () => this.lose(new Error("the SSH connection closed")));
    for (const hop of hops) hop.on("error", (error) => this.lose(error));
  }

  exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    const step = options.step ?? STEP;
    if (this.closed || this.lost !== undefined) return Promise.reject(this.connectionLost(command, step, this.lost));
    const stdin = options.stdin ?? "";
    recordExec(this.label, Buffer.byteLength(command) + Buffer.byteLength(stdin));
    return new Promise((resolve, reject) => {
      let channel: ClientChannel | undefined;
      let exit: { exitCode: number | null; signal?: string } | undefined;
      const stdout: Buffer[] = [];
      const stderr: Buffer[] = [];
      let timer: NodeJS.Timeout | undefined;
      const finish = (outcome: () => void) => {
        clearTimeout(timer);
        this.running.delete(onLost);
        outcome();
      };
      const onLost = (cause: Error) => finish(() => reject(this.connectionLost(command, step, cause)));
      this.running.add(onLost);
      if (options.timeoutMs !== undefined) {
        const limitMs = options.timeoutMs;
        timer = setTimeout(() => {
          channel?.signal("KILL");
          channel?.close();
          finish(() =>
            reject(
              new RemoteTimeoutError(
                `no answer within ${formatDuration(limitMs)}; the command's channel was closed (the host may still be running it)`,
                `find out what blocks on the host (the evidence is the output so far)${options.timeoutHint ? `, or ${options.timeoutHint}` : ", or allow more time"}`,
                { host: this.label, step, command: commandSummary(command), evidence: outputLines(stdout, stderr) },
              ),
            ),
          );
        }, limitMs);
      }
      this.client.exec(command, (error, opened) => {
        if (error) {
          const refused = new ConnectionError(`the host did not open a channel for the command: ${error.message}`, "check the host's sshd (MaxSessions) and that the connection is still up", {
            host: this.label,
            step,
            command: commandSummary(command),
            cause: error,
          });
          return finish(() => reject(this.lost === undefined ? refused : this.connectionLost(command, step, this.lost)));
        }
        channel = opened;
        opened.on("data", (chunk: Buffer) => stdout.push(chunk));
        opened.stderr.on("data", (chunk: Buffer) => stderr.push(chunk));
        opened.on("exit", (code: number | null, signal?: string) => {
          exit = signal === undefined ? { exitCode: code } : { exitCode: null, signal };
        });
        opened.on("close", () => {
          // A channel torn down with the connection closes without an exit status.
          if (exit === undefined) return onLost(this.lost ?? new Error("the channel closed without an exit status"));
          const result = { ...exit, stdout: Buffer.concat(stdout).toString("utf8"), stderr: Buffer.concat(stderr).toString("utf8") };
          finish(() => resolve(result));
        });
        opened.end(stdin);
      });
    });
  }

  close(): void {
    this.closed = true;
    this.client.end();
    for (const hop of this.hops) hop.end();
  }

  private lose(cause: Error): void {
    this.lost ??= cause;
    for (const fail of [...this.running]) fail(this.lost);
  }

  private connectionLost(command: string, step: string, cause: Error | undefined): ConnectionError {
    const summary = this.closed
      ? "the session was already closed"
      : `the SSH connection was lost before the command finished (${cause?.message ?? "no reason given"}); it may have run partly`;
    return new ConnectionError(summary, "check that the host is up, then run again: the next run re-reads the host's state", {
      host: this.label,
      step,
      command: commandSummary(command),
      cause,
    });
  }
}

/** "60 s", or "300 ms" below a second. */
function formatDuration(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${Math.round(ms / 100) / 10} s`;
}

/** The first line of a script is enough to recognize it; whole scripts would bury the message. */
function commandSummary(command: string): string {
  const firstLine = command.split("\n", 1)[0]!;
  return firstLine.length > 80 || command.includes("\n") ? `${firstLine.slice(0, 80)}…` : firstLine;
}

function outputLines(stdout: Buffer[], stderr: Buffer[]): string[] {
  return [...Buffer.concat(stdout).toString("utf8").split("\n"), ...Buffer.concat(stderr).toString("utf8").split("\n")];
}
