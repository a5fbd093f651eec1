/** The shell that runs on hosts: every file of provider/remote, expanded as it is sent, parses under dash and is shellcheck-clean. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { factsScript } from "../../provider/core/facts";
import { REMOTE_SCRIPT_NAMES, remoteScript, type RemoteScriptName } from "../../provider/core/remote";
import { REMOTE_SCRIPTS } from "../../provider/core/remote-scripts.generated";
import { applyScript, compatHelperScript, rollbackScript } from "../../provider/core/scripts";
import { verifyScript } from "../../provider/core/verify";

const dir = mkdtempSync(join(tmpdir(), "rdn-remote-"));

function lint(name: string, text: string): void {
  const path = join(dir, `${name.replace("/", "-")}.sh`);
  writeFileSync(path, text);
  const dash = spawnSync("dash", ["-n", path], { encoding: "utf8" });
  assert.equal(dash.status, 0, `dash -n ${name}: ${dash.stderr}`);
  // SC2317: a library function that this one script does not call is not dead code.
  const shellcheck = spawnSync("shellcheck", ["--shell=sh", "--severity=style", "--exclude=SC2317", path], { encoding: "utf8" });
  assert.notEqual(shellcheck.error?.message.includes("ENOENT"), true, "shellcheck is missing: apt-get install shellcheck");
  assert.equal(shellcheck.status, 0, `shellcheck ${name}:\n${shellcheck.stdout}${shellcheck.stderr}`);
}

const lockParams = { unit: "docker.service", lockWaitSeconds: 120, lockHolder: "ci@runner pid 7 (it's me)", backupDir: "~/.local/state/pulumi-rootless-docker/backup/docker.service/override.conf", activeTimeoutSeconds: 90 };
const dropIn = "~/.config/systemd/user/docker.service.d/override.conf";
/** Scripts that need parameters, as the engine sends them: a write, a removal, a restart-only CAS, the post-apply facts. */
const AS_SENT: Partial<Record<RemoteScriptName, string>> = {
  apply: applyScript({
    ...lockParams,
    writes: [
      { path: dropIn, content: "[Service]\nEnvironment=DOCKERD_ROOTLESS_ROOTLESSKIT_NET=pasta\n", mode: 0o644 },
      { path: "~/.local/lib/pulumi-rootless-docker/pasta-ipv6-compat.sh", content: null, mode: 0o755 },
    ],
    expectedSha256: { [dropIn]: null, "~/.local/lib/pulumi-rootless-docker/pasta-ipv6-compat.sh": "0".repeat(64) },
    daemonReload: true,
    restart: true,
    expectedInvocationId: "0123456789abcdef0123456789abcdef",
    factsScript: factsScript({ unit: "docker.service", dropInName: "override.conf" }),
  }),
  rollback: rollbackScript({ ...lockParams, expectedSha256: { [dropIn]: "0".repeat(64) }, restart: true }),
  verify: verifyScript({ enabled: true, targets: [{ address: "fd99::1", tcpPort: 8081, icmp: true }, { address: "fd12:3456:789a::53", icmp: false, tcpPort: 443 }], required: true, timeoutSeconds: 60, image: "busybox" }, { container: true, unit: "docker.service" }),
};

for (const name of REMOTE_SCRIPT_NAMES.filter((script) => !script.startsWith("lib/"))) {
  test(`remote script ${name} is dash- and shellcheck-clean as sent`, () => lint(name, AS_SENT[name] ?? remoteScript(name)));
}

test("parameters are a header of quoted assignments after the #! line, never spliced into the text", () => {
  const text = remoteScript("compat-helper", { rdn_value: "a'b\nc" });
  assert.equal(text.split("\n")[0], "#!/bin/sh");
  assert.equal(text.split("\n")[1], "rdn_value='a'\\''b");
  assert.throws(() => remoteScript("compat-helper", { "bad name": "x" }), /invalid parameter name/);
});

test("the installed compat helper is the shell file with its libraries expanded", () => {
  const helper = compatHelperScript();
  assert.doesNotMatch(helper, /rdn:include/);
  assert.match(helper, /^rdn_state_dir\(\) \{$/m);
  assert.match(helper, /^export XDG_RUNTIME_DIR DBUS_SESSION_BUS_ADDRESS PATH$/m);
});

test("the probe is dash- and shellcheck-clean on its own, as sh -c runs it in the namespace and in busybox", () => lint("probe", `#!/bin/sh\n${REMOTE_SCRIPTS["lib/probe"]}`));

test("verify.sh hands the probe to sh as the text of lib/probe.sh, through a quoted here-document", () => {
  const probe = spawnSync("sh", ["-c", `${verifyScript({ enabled: true, targets: [{ address: "fd99::1", icmp: true }], required: false, timeoutSeconds: 1, image: "busybox" }, { container: false }).split("\necho 'RDN begin 1'")[0]}\nprintf %s "$probe"`], { encoding: "utf8" });
  assert.equal(probe.status, 0, probe.stderr);
  assert.equal(probe.stdout, REMOTE_SCRIPTS["lib/probe"].replace(/\n$/, ""));
});
