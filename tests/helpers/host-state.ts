/** What a lab host really runs, read as the host's user (not over SSH), for tests that must see past the tool. */
import assert from "node:assert/strict";
import { userExec, type LabHost } from "../../lab/api";

export const DROP_IN = "/home/dev/.config/systemd/user/docker.service.d/override.conf";

export interface HostState {
  /** null = no drop-in. */
  dropIn: string | null;
  active: string;
  /** argv of the running RootlessKit (the unit's main process), space-joined. */
  rootlesskit: string;
}

export async function userCommand(lab: LabHost, command: string): Promise<string> {
  const result = await userExec(lab.name, command);
  assert.equal(result.exitCode, 0, `${lab.name}: ${command}: ${result.stderr}`);
  return result.stdout;
}

export async function hostState(lab: LabHost): Promise<HostState> {
  const out = await userCommand(
    lab,
    `if [ -e ${DROP_IN} ]; then base64 -w 0 ${DROP_IN}; else printf absent; fi; echo; systemctl --user is-active docker; ` +
      `tr '\\0' ' ' < /proc/$(systemctl --user show -p MainPID --value docker)/cmdline 2>/dev/null; echo`,
  );
  const [dropIn, active, rootlesskit] = out.split("\n");
  return { dropIn: dropIn === "absent" ? null : Buffer.from(dropIn!, "base64").toString("utf8"), active: active!, rootlesskit: rootlesskit!.trim() };
}

/** Puts `content` in our drop-in and restarts Docker on it, as on a host someone set up by hand; returns that state. */
export async function startFrom(lab: LabHost, content: string): Promise<HostState> {
  await userCommand(
    lab,
    `mkdir -p $(dirname ${DROP_IN}) && printf '%s' '${Buffer.from(content).toString("base64")}' | base64 -d > ${DROP_IN} && ` +
      `systemctl --user daemon-reload && systemctl --user reset-failed docker; systemctl --user restart docker && ` +
      `i=0; until docker info >/dev/null 2>&1 || [ $i -ge 120 ]; do sleep 0.5; i=$((i+1)); done; docker info >/dev/null`,
  );
  const state = await hostState(lab);
  assert.equal(state.active, "active");
  return state;
}

/** Returns once no apply script holds the host lock (a script cut off from its SSH connection runs on until then). */
export async function lockReleased(lab: LabHost): Promise<void> {
  await userCommand(lab, `flock -w 180 "$XDG_RUNTIME_DIR/pulumi-rootless-docker/apply.lock" true`);
}

/** Returns once an apply script waits for the host lock (a `flock -w` of the host's user is blocked). */
export async function lockWaiterSeen(lab: LabHost): Promise<void> {
  await userCommand(lab, `i=0; until pgrep -u dev -x flock >/dev/null || [ $i -ge 600 ]; do sleep 0.1; i=$((i+1)); done; pgrep -u dev -x flock >/dev/null`);
}
