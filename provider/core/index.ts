/** The pure core: every shape, rule, renderer and parser, with no I/O. */
export * from "./types";
export * from "./schema";
export * from "./dropin";
export * from "./plan";
export * from "./running";
export * from "./facts";
export * from "./scripts";
export * from "./verify";
export * from "./waves";
