import { strict as assert } from "node:assert";
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it, test } from "node:test";
import { APPLY_EXIT, applyScript, compatHelperScript, parseApplyOutcome, remoteShellCommand, rollbackScript, shellQuote, type ApplyParams } from "../../provider/core/scripts";

const roots: string[] = [];
after(() => roots.forEach((root) => rmSync(root, { recursive: true, force: true })));

/**
 * A sandbox HOME with fake `systemctl`, `journalctl` and `curl` first on PATH. The fake systemctl records
 * its calls; each `restart` takes the next line of `outcomes` as the new ActiveState (default active).
 */
function sandbox(outcomes: string[] = []) {
  const root = mkdtempSync(join(tmpdir(), "rdn-scripts-"));
  roots.push(root);
  const bin = join(root, "bin");
  const state = join(root, "state");
  for (const dir of [bin, state, join(root, "home"), join(root, "run")]) mkdirSync(dir, { recursive: true });
  writeFileSync(join(state, "active"), "active\n");
  writeFileSync(join(state, "invocation"), "1\n");
  writeFileSync(join(state, "outcomes"), outcomes.map((line) => `${line}\n`).join(""));
  const script = (name: string, body: string) => {
    writeFileSync(join(bin, name), `#!/bin/sh\n${body}\n`);
    chmodSync(join(bin, name), 0o755);
  };
  script(
    "systemctl",
    `S=${shellQuote(state)}
echo "$*" >> "$S/calls"
[ "$1" = --user ] && shift
case $1 in
  show) case $3 in ActiveState) cat "$S/active" ;; InvocationID) cat "$S/invocation" ;; MainPID) echo 0 ;; esac ;;
  restart)
    echo $(( $(cat "$S/invocation") + 1 )) > "$S/invocation"
    next=$(head -n 1 "$S/outcomes"); sed -i 1d "$S/outcomes"
    echo "\${next:-active}" > "$S/active" ;;
esac
exit 0`,
  );
  script("journalctl", `echo "dockerd-rootless.sh: [rootlesskit:parent] error: network \\"pasta\\" requires port driver \\"none\\" or \\"implicit\\""`);
  script("curl", "exit 0");
  const env = { ...process.env, HOME: join(root, "home"), XDG_RUNTIME_DIR: join(root, "run"), PATH: `${bin}:${process.env.PATH}` };
  const run = (text: string) => {
    const result = spawnSync("sh", ["-c", text], { encoding: "utf8", env });
    return { ...result, outcome: parseApplyOutcome(result.stdout, result.status ?? -1) };
  };
  const calls = () => (existsSync(join(state, "calls")) ? readFileSync(join(state, "calls"), "utf8").trim().split("\n") : []);
  return { root, home: join(root, "home"), run, calls, env };
}

const base = { unit: "docker.service", lockWaitSeconds: 0, lockHolder: "alice@laptop pid 1", backupDir: "~/.local/state/pulumi-rootless-docker/backup", activeTimeoutSeconds: 5 };
const DROPIN = "~/.config/systemd/user/docker.service.d/50-pulumi-rootless-docker.conf";
const CONTENT = "[Service]\nEnvironment=DOCKERD_ROOTLESS_ROOTLESSKIT_NET=pasta \"DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS=--ipv6 'x'\"\n";

/** Undoing `params()`'s apply: the drop-in must still be what it wrote. */
const rollbackParams = { ...base, expectedSha256: { [DROPIN]: createHash("sha256").update(CONTENT).digest("hex") } };

function params(overrides: Partial<ApplyParams> = {}): ApplyParams {
  return { ...base, writes: [{ path: DROPIN, content: CONTENT, mode: 0o644 }], expectedSha256: { [DROPIN]: null }, daemonReload: true, restart: true, ...overrides };
}

test("shellQuote survives hostile strings through a real sh", () => {
  for (const value of ["plain", "it's", "'", "a\nb", "$(touch /x)`id`", "\\\"", "", " spaced  out ", "ü\t"]) {
    const echoed = spawnSync("sh", ["-c", `printf '%s' ${shellQuote(value)}`], { encoding: "utf8" });
    assert.equal(echoed.stdout, value);
  }
});

test("every script passes dash's syntax check", () => {
  const scripts = [applyScript(params()), applyScript(params({ writes: [], expectedSha256: {}, restart: false })), rollbackScript(rollbackParams), compatHelperScript()];
  for (const script of scripts) {
    const check = spawnSync("dash", ["-n"], { input: script, encoding: "utf8" });
    assert.equal(check.status, 0, check.stderr);
  }
});

test("apply writes atomically with the mode, reloads, restarts, waits, and backs up the absent file", () => {
  const box = sandbox();
  const { status, outcome } = box.run(applyScript(params()));
  assert.equal(status, APPLY_EXIT.ok);
  assert.equal(outcome.result, "applied");
  assert.deepEqual(
    outcome.steps.map((step) => `${step.name} ${step.status}`),
    ["lock ok", "compare ok", "backup ok", "write ok", "daemon-reload ok", "restart ok", "wait-active ok"],
  );
  const written = join(box.home, ".config/systemd/user/docker.service.d/50-pulumi-rootless-docker.conf");
  assert.equal(readFileSync(written, "utf8"), CONTENT);
  assert.equal(statSync(written).mode & 0o777, 0o644);
  const backup = join(box.home, ".local/state/pulumi-rootless-docker/backup");
  assert.ok(existsSync(join(backup, "0.absent")) && existsSync(join(backup, "complete")));
  assert.deepEqual(
    box.calls().filter((call) => !call.includes("show")),
    ["--user daemon-reload", "--user reset-failed docker.service", "--user restart --no-block docker.service"],
  );
});

test("a second apply of the same content is unchanged and touches nothing", () => {
  const box = sandbox();
  box.run(applyScript(params()));
  const { outcome } = box.run(applyScript(params({ daemonReload: false, restart: false, expectedSha256: {} })));
  assert.equal(outcome.result, "unchanged");
  assert.ok(outcome.steps.some((step) => step.name === "write" && step.status === "unchanged"));
});

test("compare-and-swap: a file changed since the facts were read aborts before any write", () => {
  const box = sandbox();
  const written = join(box.home, ".config/systemd/user/docker.service.d/50-pulumi-rootless-docker.conf");
  mkdirSync(join(written, ".."), { recursive: true });
  writeFileSync(written, "edited by hand\n");
  const { status, outcome } = box.run(applyScript(params()));
  assert.equal(status, APPLY_EXIT.changedSincePlan);
  assert.equal(outcome.result, "changed-since-plan");
  assert.equal(outcome.changedPath, written);
  assert.equal(readFileSync(written, "utf8"), "edited by hand\n");
  assert.deepEqual(box.calls(), []);
});

test("a restart-only apply compares the InvocationID under the lock: a daemon restarted since the plan is not restarted again", () => {
  const box = sandbox();
  // The sandbox's daemon runs invocation 1; the plan saw 0 (another apply restarted it meanwhile).
  const { status, outcome } = box.run(applyScript(params({ writes: [], expectedSha256: {}, daemonReload: false, expectedInvocationId: "0" })));
  assert.equal(status, APPLY_EXIT.changedSincePlan);
  assert.equal(outcome.changedPath, "InvocationID");
  assert.match(outcome.detail, /InvocationID changed since the facts were read/);
  assert.deepEqual(box.calls().filter((call) => !call.includes("show")), []);

  const current = box.run(applyScript(params({ writes: [], expectedSha256: {}, daemonReload: false, expectedInvocationId: "1" })));
  assert.equal(current.outcome.result, "applied");
  assert.deepEqual(box.calls().filter((call) => !call.includes("show")), ["--user reset-failed docker.service", "--user restart --no-block docker.service"]);
});

test("a restart-only apply keeps the previous backup, and its failed restart restores nothing", () => {
  const box = sandbox(["active", "failed"]);
  box.run(applyScript(params()));
  const backup = join(box.home, ".local/state/pulumi-rootless-docker/backup");
  assert.ok(existsSync(join(backup, "0.absent")));
  const { status, outcome } = box.run(applyScript(params({ writes: [], expectedSha256: {}, daemonReload: false, activeTimeoutSeconds: 1 })));
  assert.equal(status, APPLY_EXIT.failed);
  assert.equal(outcome.failedStep, "wait-active");
  assert.ok(outcome.journal.length > 0, "journal lines are captured");
  assert.equal(outcome.steps.some((step) => step.name === "restore"), false);
  assert.ok(existsSync(join(backup, "0.absent")) && existsSync(join(backup, "complete")), "the previous backup is still there");
  assert.equal(readFileSync(join(box.home, ".config/systemd/user/docker.service.d/50-pulumi-rootless-docker.conf"), "utf8"), CONTENT);
});

test("the facts script runs again under the lock at the end of an apply, its output framed in one line", () => {
  const box = sandbox();
  const { outcome } = box.run(applyScript(params({ factsScript: "#!/bin/sh\necho 'RDN key value'\nprintf 'no newline'" })));
  assert.equal(outcome.result, "applied");
  assert.equal(outcome.factsAfter, "RDN key value\nno newline");
});

test("a held lock times out with the holder's name and changes nothing", async () => {
  const box = sandbox();
  const lock = join(box.root, "run/pulumi-rootless-docker/apply.lock");
  mkdirSync(join(lock, ".."), { recursive: true });
  writeFileSync(`${lock}.holder`, "bob@ci pid 42\n");
  const holder = spawn("flock", [lock, "sh", "-c", "echo locked; cat"], { stdio: ["pipe", "pipe", "inherit"] });
  await new Promise<void>((resolve) => holder.stdout.once("data", () => resolve()));
  try {
    const { status, outcome } = box.run(applyScript(params()));
    assert.equal(status, APPLY_EXIT.lockTimeout);
    assert.equal(outcome.result, "lock-timeout");
    assert.equal(outcome.lockHolder, "bob@ci pid 42");
    assert.equal(existsSync(join(box.home, ".config/systemd/user/docker.service.d")), false);
  } finally {
    holder.stdin.end();
    await new Promise((resolve) => holder.once("exit", resolve));
  }
});

test("a restart that fails rolls back: previous file restored, reload, restart again, journal captured", () => {
  const box = sandbox(["failed", "active"]);
  const written = join(box.home, ".config/systemd/user/docker.service.d/50-pulumi-rootless-docker.conf");
  mkdirSync(join(written, ".."), { recursive: true });
  writeFileSync(written, "[Service]\nEnvironment=OLD=1\n");
  chmodSync(written, 0o600);
  const sha = spawnSync("sha256sum", [written], { encoding: "utf8" }).stdout.split(" ")[0];
  const { status, outcome } = box.run(applyScript(params({ expectedSha256: { [DROPIN]: sha } })));
  assert.equal(status, APPLY_EXIT.rolledBack);
  assert.equal(outcome.result, "rolled-back");
  assert.equal(outcome.failedStep, "wait-active");
  assert.match(outcome.journal.join("\n"), /requires port driver/);
  assert.equal(readFileSync(written, "utf8"), "[Service]\nEnvironment=OLD=1\n");
  assert.equal(statSync(written).mode & 0o777, 0o600);
  assert.deepEqual(
    outcome.steps.slice(-4).map((step) => `${step.name} ${step.status}`),
    ["restore ok", "rollback-daemon-reload ok", "rollback-restart ok", "rollback-wait-active ok"],
  );
});

test("a rollback whose restart fails too reports rollback-failed", () => {
  const box = sandbox(["failed", "failed"]);
  const { status, outcome } = box.run(applyScript(params()));
  assert.equal(status, APPLY_EXIT.rollbackFailed);
  assert.equal(outcome.result, "rollback-failed");
  // The file did not exist before: the rollback removed it again.
  assert.equal(existsSync(join(box.home, ".config/systemd/user/docker.service.d/50-pulumi-rootless-docker.conf")), false);
});

test("rollbackScript restores the backups of the last successful apply", () => {
  const box = sandbox();
  box.run(applyScript(params()));
  const written = join(box.home, ".config/systemd/user/docker.service.d/50-pulumi-rootless-docker.conf");
  assert.ok(existsSync(written));
  const { status, outcome } = box.run(rollbackScript(rollbackParams));
  assert.equal(status, APPLY_EXIT.rolledBack);
  assert.equal(outcome.result, "rolled-back");
  assert.equal(existsSync(written), false);
});

test("rollbackScript leaves the files alone when another apply has written since ours", () => {
  const box = sandbox();
  box.run(applyScript(params()));
  const written = join(box.home, ".config/systemd/user/docker.service.d/50-pulumi-rootless-docker.conf");
  writeFileSync(written, "[Service]\nEnvironment=DOCKERD_ROOTLESS_ROOTLESSKIT_MTU=1500\n");
  const { status, outcome } = box.run(rollbackScript(rollbackParams));
  assert.equal(status, APPLY_EXIT.changedSincePlan);
  assert.equal(outcome.result, "changed-since-plan");
  assert.equal(readFileSync(written, "utf8"), "[Service]\nEnvironment=DOCKERD_ROOTLESS_ROOTLESSKIT_MTU=1500\n");
});

test("rollbackScript without a backup fails and says so", () => {
  const box = sandbox();
  const { outcome } = box.run(rollbackScript({ ...base, expectedSha256: {} }));
  assert.equal(outcome.result, "rollback-failed");
  assert.match(outcome.steps.find((step) => step.name === "restore")?.detail ?? "", /no complete backup/);
});

test("parseApplyOutcome: no result line (connection lost) is failed, with the last step named", () => {
  const cut = "RDN step lock ok \nRDN step compare ok \nRDN step write failed L2E=\n";
  const outcome = parseApplyOutcome(cut, 255);
  assert.equal(outcome.result, "failed");
  assert.equal(outcome.failedStep, "write");
  assert.match(outcome.detail, /without a result \(exit code 255\)/);
  assert.equal(parseApplyOutcome("", APPLY_EXIT.lockTimeout).result, "lock-timeout");
});

test("compatHelperScript never fails the unit, even with no namespace to configure", () => {
  const box = sandbox();
  const run = spawnSync("sh", ["-c", compatHelperScript().replace("-ge 50", "-ge 1")], { encoding: "utf8", env: box.env });
  assert.equal(run.status, 0);
  assert.match(run.stderr, /pasta-ipv6-compat: no RootlessKit namespace/);
});

describe("remoteShellCommand", () => {
  it("runs the script byte for byte under /bin/sh, whichever shell parses the command line", () => {
    const script = `printf '%s\\n' "it's \\"quoted\\"" 'back\\slash $HOME \`x\`'\nprintf 'shell=%s\\n' "$0"\n`;
    const expected = spawnSync("/bin/sh", ["-c", script], { encoding: "utf8" }).stdout;
    assert.match(expected, /shell=\/bin\/sh/);
    for (const loginShell of ["/bin/sh", "/bin/bash"]) {
      const result = spawnSync(loginShell, ["-c", remoteShellCommand(script)], { encoding: "utf8" });
      assert.equal(result.stdout, expected, `${loginShell}: ${result.stderr}`);
    }
    assert.match(remoteShellCommand(script), /^echo [A-Za-z0-9+/=]+ \| base64 -d \| \/bin\/sh$/);
  });
});
