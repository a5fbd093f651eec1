/**
 * Every file systemd will load, on a real host (issue 9, observations 1, 4, 5 and 7): the plan names the file and
 * line that decides each variable, and apply refuses before it writes or reloads into a state the plan knows is wrong.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

process.env.RDL_LAB = "sources";
import { hostExec, labDown, labUp, userExec, type LabHost } from "../../lab/api";
import { applyHost, inspectHost } from "../../provider/engine";
import { isCapabilityError } from "../../provider/errors";
import { labSpec } from "../helpers/lab-spec";

const UNIT_DIR = "/home/dev/.config/systemd/user/docker.service.d";
const DROP_IN = `${UNIT_DIR}/override.conf`;
const ADMIN_DROP_IN = "/etc/systemd/user/docker.service.d/override.conf";

async function onHost(host: LabHost, command: string, as: "user" | "root" = "user"): Promise<string> {
  const result = as === "root" ? await hostExec(host.name, command) : await userExec(host.name, command);
  assert.equal(result.exitCode, 0, `${host.name}: ${command}: ${result.stderr}`);
  return result.stdout;
}
const property = async (host: LabHost, name: string) => (await onHost(host, `systemctl --user show docker -p ${name} --value`)).trim();

describe("the plan reads every file systemd will load", { timeout: 600_000 }, () => {
  let host: LabHost;
  const slirp = (overrides: Record<string, unknown> = {}) => labSpec(host, { networkDriver: "slirp4netns", verify: { enabled: false }, ...overrides });

  before(async () => {
    await labDown();
    [host] = await labUp({ hosts: 1, profile: "trixie" });
  });
  after(() => labDown());

  it("observation 7: a same-named drop-in in /etc/systemd/user is masked by ours, a warning listing what it sets, never an overrider error", async () => {
    await onHost(host, `mkdir -p ${ADMIN_DROP_IN.slice(0, ADMIN_DROP_IN.lastIndexOf("/"))} && printf '[Service]\\nEnvironment=DOCKERD_ROOTLESS_ROOTLESSKIT_NET=vpnkit HTTP_PROXY=http://proxy.example:3128\\n' > ${ADMIN_DROP_IN}`, "root");
    await onHost(host, "systemctl --user daemon-reload");
    const { plan } = await inspectHost(slirp());
    assert.deepEqual(plan.problems.filter((problem) => problem.severity === "error"), []);
    const warning = plan.problems.find((problem) => problem.message.includes(`masks ${ADMIN_DROP_IN}`));
    assert.ok(warning, JSON.stringify(plan.problems));
    assert.match(warning.message, /HTTP_PROXY=http:\/\/proxy\.example:3128/);

    await applyHost(slirp());
    // systemd agrees: only ours is loaded, and the admin's variables are gone from the unit.
    assert.equal(await property(host, "DropInPaths"), DROP_IN);
    assert.doesNotMatch(await property(host, "Environment"), /HTTP_PROXY|vpnkit/);
    const again = await inspectHost(slirp());
    assert.equal(again.plan.differs, false, JSON.stringify(again.plan.changes));
    await onHost(host, `rm -f ${ADMIN_DROP_IN}`, "root");
  });

  it("observation 1: a drop-in written after the last daemon-reload is named, and apply refuses before writing or reloading", async () => {
    await onHost(host, "systemctl --user daemon-reload");
    const ours = await onHost(host, `cat ${DROP_IN}`);
    await onHost(host, `printf '[Service]\\nEnvironment=DOCKERD_ROOTLESS_ROOTLESSKIT_NET=vpnkit\\n' > ${UNIT_DIR}/zz-later.conf`);
    assert.equal(await property(host, "NeedDaemonReload"), "yes");

    const { plan } = await inspectHost(slirp());
    const row = plan.changes.find((change) => change.property === "DOCKERD_ROOTLESS_ROOTLESSKIT_NET");
    assert.deepEqual(row, {
      level: "effective",
      property: "DOCKERD_ROOTLESS_ROOTLESSKIT_NET",
      desired: "slirp4netns",
      actual: "vpnkit",
      cause: `${UNIT_DIR}/zz-later.conf:2, written after the last daemon-reload, sets it: the next reload brings it`,
    });

    await assert.rejects(applyHost(slirp()), (error: unknown) => isCapabilityError(error) && /zz-later\.conf:2 was written after the last daemon-reload/.test((error as Error).message));
    assert.equal(await onHost(host, `cat ${DROP_IN}`), ours, "nothing was written");
    assert.equal(await property(host, "NeedDaemonReload"), "yes", "apply did not reload into the state it knows is wrong");
    assert.doesNotMatch(await property(host, "Environment"), /vpnkit/);
    await onHost(host, `rm -f ${UNIT_DIR}/zz-later.conf && systemctl --user daemon-reload`);
  });

  it("observation 4: an EnvironmentFile=, an UnsetEnvironment= and a later drop-in are each named as the decider", async () => {
    const cases: [string, string, RegExp][] = [
      ["EnvironmentFile=%h/.config/docker.env", "DOCKERD_ROOTLESS_ROOTLESSKIT_MTU=1500", /EnvironmentFile= \/home\/dev\/\.config\/docker\.env:1 sets DOCKERD_ROOTLESS_ROOTLESSKIT_MTU=1500/],
      ["UnsetEnvironment=DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER", "", /UnsetEnvironment= in .*zz-source\.conf:2 unsets DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER/],
    ];
    for (const [line, envFile, expected] of cases) {
      await onHost(host, `printf '%s\\n' '${envFile}' > ~/.config/docker.env && printf '[Service]\\n%s\\n' '${line}' > ${UNIT_DIR}/zz-source.conf && systemctl --user daemon-reload`);
      const { plan } = await inspectHost(slirp());
      const errors = plan.problems.filter((problem) => problem.severity === "error");
      assert.ok(errors.some((problem) => expected.test(problem.message)), `${line}: ${JSON.stringify(plan.problems)}`);
    }
    await onHost(host, `rm -f ${UNIT_DIR}/zz-source.conf ~/.config/docker.env && systemctl --user daemon-reload`);
  });

  it("observation 5: ipv6 false is enforced against an earlier drop-in setting --ipv6: RootlessKit runs without it", async () => {
    await onHost(host, `printf '[Service]\\nEnvironment=DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS=--ipv6\\n' > ${UNIT_DIR}/10-site.conf && systemctl --user daemon-reload && systemctl --user restart docker`);
    const before = await inspectHost(slirp({ ipv6: false }));
    assert.equal(before.running.ipv6, true, "the site drop-in has IPv6 on");
    assert.equal(before.plan.differs, true, "ipv6: false is not in sync with a host running --ipv6");
    await applyHost(slirp({ ipv6: false }));
    const argv = (await onHost(host, "tr '\\0' ' ' < /proc/$(systemctl --user show docker -p MainPID --value)/cmdline")).split(" ");
    assert.equal(argv.includes("--ipv6"), false, argv.join(" "));
    const again = await inspectHost(slirp({ ipv6: false }));
    assert.equal(again.plan.differs, false, JSON.stringify(again.plan.changes));
    await onHost(host, `rm -f ${UNIT_DIR}/10-site.conf && systemctl --user daemon-reload`);
  });
});
