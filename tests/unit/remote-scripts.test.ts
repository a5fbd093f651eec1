/** The shell that runs on hosts: every file of provider/remote, expanded as it is sent, parses under dash and is shellcheck-clean. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REMOTE_SCRIPT_NAMES, remoteScript } from "../../provider/core/remote";
import { compatHelperScript } from "../../provider/core/scripts";

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

for (const name of REMOTE_SCRIPT_NAMES.filter((script) => !script.startsWith("lib/"))) {
  test(`remote script ${name} is dash- and shellcheck-clean as sent`, () => lint(name, remoteScript(name)));
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
