/**
 * Connection and exec counting. Tests and benchmarks count across processes (the Pulumi engine
 * runs the provider in its own process), so events go to the file named by ROOTLESS_DOCKER_NET_TRACE;
 * the in-process counters serve tests that run the transport directly.
 */
import { appendFileSync } from "node:fs";

export const TRACE_ENV = "ROOTLESS_DOCKER_NET_TRACE";

export interface TransportStats {
  /** TCP connections opened, bastion hops included. */
  connections: number;
  execs: number;
}

const stats: TransportStats = { connections: 0, execs: 0 };
let traceFailureReported = false;

export function transportStats(): TransportStats {
  return { ...stats };
}

/** One connection opened; `viaProxy` marks the bastion hop so counts per target host can leave it out. */
export function recordConnect(host: string, viaProxy: boolean): void {
  stats.connections += 1;
  appendTrace({ event: "connect", host, ...(viaProxy ? { via: "proxy" } : {}) });
}

/** One exec started; `bytes` is what was sent (command + stdin), never the text itself. */
export function recordExec(host: string, bytes: number): void {
  stats.execs += 1;
  appendTrace({ event: "exec", host, bytes });
}

function appendTrace(event: Record<string, unknown>): void {
  const path = process.env[TRACE_ENV];
  if (!path) return;
  try {
    // One short O_APPEND write per line keeps lines whole when several processes trace to one file.
    appendFileSync(path, `${JSON.stringify({ ...event, pid: process.pid, time: new Date().toISOString() })}\n`);
  } catch (error) {
    // Tracing must never break a deployment; say once that the counts are incomplete.
    if (!traceFailureReported) process.stderr.write(`${TRACE_ENV}: cannot append to ${path}: ${(error as Error).message}\n`);
    traceFailureReported = true;
  }
}
