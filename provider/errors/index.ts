export * from "./base";
export * from "./connection-error";
export * from "./host-key-error";
export * from "./remote-command-error";
export * from "./capability-error";
export * from "./verification-error";
export * from "./rollback-error";
export * from "./lock-timeout-error";
