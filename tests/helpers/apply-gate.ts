/**
 * Holds the remote apply script at one step inside a lab host, so a test can act exactly there (cut the
 * SSH connection, start a second apply). It shadows `cmp` and `systemctl` in /usr/local/bin, which comes
 * before /usr/bin on sshd's PATH, with a wrapper that, once armed, waits at the first matching command run
 * over SSH (never at the lab's own `hostExec`/`userExec`), records the SSH session processes above it, and
 * goes on when released.
 */
import { hostExec } from "../../lab/api";

/** The command the script runs first at each step, as a `case` pattern over `NAME ARGS`. */
export const GATE_POINTS = {
  /** Backup taken, lock held, nothing written yet: the first write compares the file with `cmp`. */
  "before write": "cmp *",
  "after write": "systemctl --user daemon-reload",
  /** rdn_restart resets the failed state before restarting. */
  "after daemon-reload": "systemctl --user reset-failed *",
  /** The restart was requested (`--no-block`); the script is waiting for the unit to become active. */
  "during restart": "systemctl --user show -p ActiveState *",
} as const;
export type GatePoint = keyof typeof GATE_POINTS;

/** Points outside the apply, where a host can be made to hang (never released until the test says so). */
export const HANG_POINTS = {
  /** The facts script's first question to systemd. */
  facts: "systemctl --user show docker.service *",
  /** The verification looks up the daemon first (an apply asks in another order: `-p MainPID` comes first only here and in a restart wait). */
  verify: "systemctl --user show -p MainPID --value *",
} as const;
export type HangPoint = keyof typeof HANG_POINTS;

const GATE_DIR = "/tmp/rdl-gate";
const SHADOWED = ["cmp", "systemctl"];

function wrapper(name: string): string {
  return `#!/bin/sh
# Test gate (tests/helpers/apply-gate.ts): waits once, when armed for this command line, until released.
gate=${GATE_DIR}
if [ -f "$gate/armed" ]; then
  pattern=$(cat "$gate/armed")
  case "${name} $*" in
    $pattern)
      sessions= pid=$$
      while [ "$pid" -gt 1 ]; do
        [ "$(cat /proc/$pid/comm 2>/dev/null)" = sshd-session ] && sessions="$sessions $pid"
        pid=$(sed -n 's/^PPid:[[:space:]]*//p' /proc/$pid/status 2>/dev/null); pid=\${pid:-1}
      done
      if [ -n "$sessions" ] && mv "$gate/armed" "$gate/fired" 2>/dev/null; then
        echo "$sessions" > "$gate/reached"
        while [ ! -e "$gate/release" ]; do sleep 0.1; done
      fi ;;
  esac
fi
exec /usr/bin/${name} "$@"
`;
}

async function root(host: string, command: string): Promise<string> {
  const result = await hostExec(host, command);
  if (result.exitCode !== 0) throw new Error(`${host}: ${command}: exit ${result.exitCode}: ${result.stderr}`);
  return result.stdout;
}

export async function installGate(host: string): Promise<void> {
  for (const name of SHADOWED) {
    const path = `/usr/local/bin/${name}`;
    await root(host, `cat > ${path} <<'RDL_GATE_EOF'\n${wrapper(name)}RDL_GATE_EOF\nchmod 755 ${path}`);
  }
}

/** The next SSH-run command matching `point` will wait. */
export async function armGate(host: string, point: GatePoint | HangPoint): Promise<void> {
  const pattern = point in GATE_POINTS ? GATE_POINTS[point as GatePoint] : HANG_POINTS[point as HangPoint];
  await root(host, `rm -rf ${GATE_DIR} && mkdir -m 777 ${GATE_DIR} && printf '%s' '${pattern}' > ${GATE_DIR}/armed && chmod 644 ${GATE_DIR}/armed`);
}

/** Waits until the armed command is reached; returns the PIDs of the SSH session processes that run it. */
export async function gateReached(host: string): Promise<number[]> {
  const text = await root(host, `i=0; while [ ! -s ${GATE_DIR}/reached ] && [ $i -lt 1800 ]; do sleep 0.1; i=$((i+1)); done; cat ${GATE_DIR}/reached`);
  const pids = text.trim().split(/\s+/).filter(Boolean).map(Number);
  if (pids.length === 0) throw new Error(`${host}: the apply script never reached the gate`);
  return pids;
}

export async function releaseGate(host: string): Promise<void> {
  await root(host, `touch ${GATE_DIR}/release`);
}

/**
 * Cuts the SSH connection the way a crash or a network failure would: the session's sshd processes die. Killing one
 * can end the other before its own signal arrives (a loaded machine can pause the shell between the two), so a process
 * already gone counts as killed; the call returns once none of them runs (a zombie counts as gone).
 */
export async function killSshSession(host: string, pids: number[]): Promise<void> {
  const list = pids.join(" ");
  await root(
    host,
    `kill -KILL ${list} 2>/dev/null; i=0; while [ $i -lt 300 ]; do alive=; for p in ${list}; do ` +
      `s=$(sed -n 's/^State:[[:space:]]*//p' /proc/$p/status 2>/dev/null); case $s in ''|Z*) ;; *) alive=$p ;; esac; done; ` +
      `[ -z "$alive" ] && exit 0; sleep 0.1; i=$((i+1)); done; echo "pid $alive still runs" >&2; exit 1`,
  );
}
