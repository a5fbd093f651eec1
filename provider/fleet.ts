/**
 * `RootlessDockerFleet`: one `RootlessDockerNetwork` per host, rolled out in waves.
 *
 * Restarting rootless Docker stops every container on the host (no live-restore in rootless mode), so
 * a fleet must not restart all hosts at once. Each resource of wave N `dependsOn` every resource of
 * wave N-1, and a `RootlessDockerNetwork` finishes only after its host applied *and* verified IPv6
 * (a required verification that fails rolls the host back and fails the resource). Pulumi skips
 * every dependent of a failed resource, so a failure in one wave leaves all later waves untouched.
 * Pulumi reports that failure on the failed host's own resource, and a failed resource's outputs never resolve, so
 * the fleet cannot observe it: each resource gets its place in the waves (`rollout`) and its error says which hosts
 * are done, failed and untouched. The fleet also logs its wave plan up front (`pulumi up` shows it).
 */
import * as pulumi from "@pulumi/pulumi";
import { mergeSettings, planWaves, ROLLOUT_NAME, ROLLOUT_NAME_RULE, waveOutcome, type Rollout, type WaveOptions } from "./core/waves";
import type { InputProblem, VerificationResult } from "./core/types";
import { RootlessDockerNetwork, type ConnectionArgs, type RootlessDockerNetworkArgs } from "./resource";

/** `RootlessDockerNetwork` inputs, each optional (shared ones and a host's own combine), with a connection in parts. */
export type FleetSettings = Omit<Partial<RootlessDockerNetworkArgs>, "connection" | "rollout"> & {
  /** Connection fields shared by every host (the user, a credential), merged key by key with the host's own. */
  connection?: pulumi.Input<Partial<ConnectionArgs>>;
};

/** One host of the fleet: its name (also the resource name suffix), its connection, and any inputs that differ from `defaults`. */
export type FleetHost = FleetSettings & {
  /** The host's name: unique in the fleet, the suffix of its resource's name. */
  name: string;
  /** Resources this host's network waits for besides the previous wave, e.g. its own prerequisite `remote.Command`. */
  dependsOn?: pulumi.Resource[];
};

/** The hosts of a `RootlessDockerFleet`, the inputs they share, and how to split them into waves. */
export interface RootlessDockerFleetArgs extends WaveOptions {
  /** A plain list (names must be known when the program runs, to name resources and plan the waves). */
  hosts: FleetHost[];
  /** Inputs shared by every host; a host's own value wins, mappings (`connection`, `verify`) are merged key by key. */
  defaults?: FleetSettings;
}

export class RootlessDockerFleet extends pulumi.ComponentResource {
  /** The hosts in rollout order, wave by wave. */
  declare readonly waves: string[][];
  /** Each host's resource, by host name. */
  declare readonly networks: Record<string, RootlessDockerNetwork>;
  /** Each host's verification result (null when verification is disabled), by host name. */
  declare readonly verifications: pulumi.Output<Record<string, VerificationResult | null>>;

  constructor(name: string, args: RootlessDockerFleetArgs, opts?: pulumi.ComponentResourceOptions) {
    super("rootless-docker:index:RootlessDockerFleet", name, {}, opts);
    const names = args.hosts.map((host) => host.name);
    const waves = planWaves(names, args);
    const problems = [...(waves.ok ? [] : waves.problems), ...rolloutNameProblems(name, names)];
    if (!waves.ok || problems.length > 0) {
      const lines = problems.map((problem) => `  ${problem.property}: ${problem.reason}`).join("\n");
      throw new pulumi.ResourceError(`fleet ${name}: invalid hosts or wave settings, nothing was created:\n${lines}`, this);
    }
    this.waves = waves.value;
    pulumi.log.info(describeRollout(this.waves), this);

    const byName = new Map(args.hosts.map((host) => [host.name, host]));
    const networks: Record<string, RootlessDockerNetwork> = {};
    let previousWave: RootlessDockerNetwork[] = [];
    for (const wave of this.waves) {
      const current = wave.map((hostName) => {
        const { name: _hostName, dependsOn = [], ...overrides } = byName.get(hostName)!;
        // Completeness (a host, a driver, a credential) is the resource's `check`, which names the missing input per host.
        const inputs = mergeInputs(args.defaults ?? {}, overrides) as unknown as RootlessDockerNetworkArgs;
        const rollout: Rollout = { fleet: name, host: hostName, waves: this.waves };
        const network = new RootlessDockerNetwork(`${name}-${hostName}`, { ...inputs, rollout }, {
          parent: this,
          dependsOn: [...previousWave, ...dependsOn],
        });
        networks[hostName] = network;
        return network;
      });
      previousWave = current;
    }
    this.networks = networks;
    this.verifications = pulumi.all(Object.fromEntries(Object.entries(networks).map(([hostName, network]) => [hostName, network.verification])));
    this.registerOutputs({ waves: this.waves, verifications: this.verifications });
  }
}

/** The wave plan, and for each wave which hosts a failure there leaves done and untouched. */
function describeRollout(waves: string[][]): string {
  const lines = waves.map((wave, index) => {
    const { done, untouched } = waveOutcome(waves, wave);
    return `  wave ${index + 1}: ${wave.join(", ")} (a failure here: done ${done.join(", ") || "none"}; untouched ${untouched.join(", ") || "none"})`;
  });
  return [`rolling out in ${waves.length} wave(s); a failed host makes Pulumi skip every later wave:`, ...lines].join("\n");
}

/** Each host's resource carries the fleet's and the hosts' names in its `rollout` input, whose schema takes ASCII names only. */
function rolloutNameProblems(fleetName: string, hostNames: readonly string[]): InputProblem[] {
  const reason = ROLLOUT_NAME_RULE;
  return [
    ...(ROLLOUT_NAME.test(fleetName) ? [] : [{ property: "name", reason }]),
    ...hostNames.flatMap((hostName, index) => (typeof hostName !== "string" || hostName.trim() === "" || ROLLOUT_NAME.test(hostName) ? [] : [{ property: `hosts[${index}].name`, reason }])),
  ];
}

/** Shared settings under per-host overrides (`mergeSettings`), resolved first because either side may be an Output. */
function mergeInputs(defaults: Record<string, unknown>, overrides: Record<string, unknown>): Record<string, unknown> {
  const merged: Record<string, unknown> = { ...defaults };
  for (const [key, value] of Object.entries(overrides)) {
    if (value === undefined) continue;
    const shared = merged[key];
    merged[key] = shared === undefined ? value : pulumi.all([shared, value]).apply(([base, own]) => mergeSettings(base, own));
  }
  return merged;
}

