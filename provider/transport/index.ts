export { hostLabel } from "./connect";
export { openSession, type ExecOptions, type ExecResult, type SessionOptions, type SshSession } from "./session";
export { transportStats, TRACE_ENV, type TransportStats } from "./trace";
