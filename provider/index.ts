/** The public API of pulumi-rootless-docker. */
export { RootlessDockerNetwork } from "./resource";
export type { ConnectionArgs, ContainerIpv6Args, ProxyConnectionArgs, RootlessDockerNetworkArgs, VerifyArgs, VerifyTargetArgs } from "./resource";
export type { NetworkOutputs, NetworkState } from "./dynamic";
export { RootlessDockerFleet } from "./fleet";
export type { FleetHost, FleetSettings, RootlessDockerFleetArgs } from "./fleet";
export * from "./errors";
export type {
  ConnectionSpec,
  Diagnosis,
  NetworkDriver,
  PathResult,
  PortDriver,
  TargetResult,
  TriState,
  VerificationResult,
  VerifySpec,
  VerifyTarget,
} from "./core/types";
export { NETWORK_DRIVERS, PORT_DRIVERS } from "./core/types";
