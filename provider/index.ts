/**
 * The public API of pulumi-rootless-docker.
 *
 * - Pulumi: `RootlessDockerNetwork` (one host) and `RootlessDockerFleet` (many hosts, in waves).
 * - Without Pulumi: `validate`, `plan`, `apply` and `verify` over a hosts file or object, the engine the CLI uses.
 * - Errors: one class per failure, each with `host`, `step`, `summary`, `fix` and `evidence`.
 *
 * The Pulumi resources are loaded on first use, so a script that only calls `plan` never loads `@pulumi/pulumi`.
 */
import type * as fleet from "./fleet";
import type * as resource from "./resource";

export type { ConnectionArgs, ContainerIpv6Args, ProxyConnectionArgs, RootlessDockerNetworkArgs, TimeoutsArgs, VerifyArgs, VerifyTargetArgs } from "./resource";
export type { NetworkOutputs, NetworkState } from "./dynamic";
export type { FleetHost, FleetSettings, RootlessDockerFleetArgs } from "./fleet";
export * from "./errors";
export * from "./api";
export type {
  CapabilityProblem,
  ConnectionSpec,
  TimeLimits,
  Diagnosis,
  InputProblem,
  NetworkDriver,
  PathResult,
  PortDriver,
  PropertyChange,
  TargetResult,
  TriState,
  VerificationResult,
  VerifySpec,
  VerifyTarget,
} from "./core/types";
export type { RunningNetwork } from "./core/running";
export { DIAGNOSES, NETWORK_DRIVERS, PORT_DRIVERS } from "./core/types";
export { VERSION } from "./version";

/** A rootless Docker host's RootlessKit networking, declared, applied over SSH and verified (see `RootlessDockerNetworkArgs`). */
export declare const RootlessDockerNetwork: typeof resource.RootlessDockerNetwork;
export type RootlessDockerNetwork = resource.RootlessDockerNetwork;
/** One `RootlessDockerNetwork` per host, rolled out in waves (see `RootlessDockerFleetArgs`). */
export declare const RootlessDockerFleet: typeof fleet.RootlessDockerFleet;
export type RootlessDockerFleet = fleet.RootlessDockerFleet;

// Getters instead of re-exports: requiring ./resource loads @pulumi/pulumi, which only Pulumi programs need.
Object.defineProperty(exports, "RootlessDockerNetwork", { enumerable: true, get: () => (require("./resource") as typeof resource).RootlessDockerNetwork });
Object.defineProperty(exports, "RootlessDockerFleet", { enumerable: true, get: () => (require("./fleet") as typeof fleet).RootlessDockerFleet });
