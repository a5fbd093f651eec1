import type { RunningNetwork } from "../core/running";
import type { HostFacts, HostPlan, VerificationResult } from "../core/types";

export interface EngineOptions {
  /** Receives every warning (capability warnings, skipped host-key checks) as it happens. */
  onWarning?: (message: string) => void;
  /** Who holds the host lock while applying, shown to a second apply that has to wait. */
  lockHolder?: string;
  /** How long a second apply waits for the host lock (seconds). */
  lockWaitSeconds?: number;
}

/** What is in force on a host, as read from the running daemon (not as declared). */
export type EffectiveNetwork = RunningNetwork;

export interface InspectResult {
  /** `user@host:port` */
  host: string;
  facts: HostFacts;
  plan: HostPlan;
  /** What the running daemon has (RootlessKit command line), not what the files say. */
  running: EffectiveNetwork;
  /** sha256 of our drop-in as read; null when the file does not exist. */
  dropInSha256: string | null;
}

export interface ApplyResult {
  host: string;
  /** The plan that was carried out (computed on the facts read in the same connection). */
  plan: HostPlan;
  /** The plan made again on the facts read after the apply: nothing left to do (else the apply fails). */
  postPlan: HostPlan;
  wrote: boolean;
  restarted: boolean;
  /** The facts read after the apply. */
  facts: HostFacts;
  running: EffectiveNetwork;
  /** sha256 of our drop-in after the apply; null when the file does not exist. */
  dropInSha256: string | null;
  compatInUse: boolean;
  warnings: string[];
  /** null when verification is disabled. */
  verification: VerificationResult | null;
}

export interface RemoveResult {
  host: string;
  /** The drop-in was deleted (nothing else was left in it). */
  removedFile: boolean;
  restarted: boolean;
  /** The removal planned again on the facts read after the delete: nothing left of ours. */
  postPlan: HostPlan;
}
