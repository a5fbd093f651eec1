/**
 * After every apply in every lab test: the plan made on the host as it is now has nothing left to do. The engine's own
 * post-apply plan is checked, and a fresh plan over a new connection proves the same independently of the engine.
 */
import assert from "node:assert/strict";
import type { ApplyReport } from "../../provider/cli/run";
import { planRemoval } from "../../provider/core/plan";
import { validateNetworkArgs } from "../../provider/core/schema";
import type { HostPlan, NetworkSpec } from "../../provider/core/types";
import { inspectHost } from "../../provider/engine";

/** What a plan still wants; with `restart: "never"` a running daemon that lags behind the files is what was asked for. */
function leftToDo(spec: NetworkSpec, plan: HostPlan): string[] {
  const changes = plan.changes.filter((change) => !(spec.restart === "never" && change.level === "running"));
  return [
    ...changes.map((change) => `${change.level} ${change.property}: ${change.actual ?? "(unset)"} (expects ${change.desired ?? "(unset)"})${change.cause ? `: ${change.cause}` : ""}`),
    ...plan.writes.map((write) => `write ${write.path}`),
    ...(plan.daemonReload ? ["daemon-reload"] : []),
    ...(plan.restart ? ["restart"] : []),
    ...plan.problems.filter((problem) => problem.severity === "error").map((problem) => `error: ${problem.message}`),
  ];
}

/** The apply's post-apply plan (when given) and a fresh plan of the host are both in sync with `spec`. */
export async function assertInSync(spec: NetworkSpec, result?: { postPlan: HostPlan }): Promise<void> {
  if (result) assert.deepEqual(leftToDo(spec, result.postPlan), [], "the engine's post-apply plan is not in sync");
  const { host, plan } = await inspectHost(spec);
  assert.deepEqual(leftToDo(spec, plan), [], `${host}: a fresh plan after the apply is not in sync`);
}

/** The same, for raw inputs as a Pulumi program gives them (the gRPC tests). */
export async function assertInputsInSync(inputs: Record<string, unknown>): Promise<void> {
  await assertInSync(validSpec(inputs));
}

export async function assertInputsRemoved(inputs: Record<string, unknown>): Promise<void> {
  await assertRemoved(validSpec(inputs));
}

function validSpec(inputs: Record<string, unknown>): NetworkSpec {
  const validation = validateNetworkArgs(inputs);
  if (!validation.ok) throw new Error(`invalid inputs: ${JSON.stringify(validation.problems)}`);
  return validation.value;
}

/** After a delete: nothing of ours is left for a removal to do (files, helper, running settings). */
export async function assertRemoved(spec: NetworkSpec, result?: { postPlan: HostPlan }): Promise<void> {
  if (result) assert.deepEqual(leftToDo(spec, result.postPlan), [], "the engine's post-delete plan is not empty");
  const { host, facts } = await inspectHost(spec);
  assert.deepEqual(leftToDo(spec, planRemoval(spec, facts)), [], `${host}: a fresh removal plan after the delete is not empty`);
}

/** Every host a CLI apply report calls applied carries a post-apply plan with nothing left to do. */
export function assertReportInSync(report: ApplyReport): void {
  for (const row of report.hosts.filter((candidate) => candidate.status === "converged" || candidate.status === "unchanged" || candidate.status === "unreachable")) {
    assert.ok(row.after, `${row.name}: no post-apply plan in the report`);
    assert.deepEqual(row.after.changes, [], `${row.name}: the post-apply plan is not in sync`);
    assert.equal(row.after.differs, false, `${row.name}: the post-apply plan still differs`);
  }
}
