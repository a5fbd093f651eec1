/**
 * `npm run demo`: the whole story on real hosts, through the CLI's own code. Starts the lab (instance
 * RDL_LAB, default "lab") with two Debian 13 hosts when it has none, then: plan (differences), apply
 * with verification (slirp4netns + IPv6 on one host; pasta + IPv6 on the other, with pastaIpv6Compat
 * since Debian 13's rootlesskit 2.0.2 starts pasta without IPv6), a second plan with no changes, a hand
 * edit on one host that shows as drift, and apply again. Leaves the lab running.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { readHostsFile, resolveHosts } from "../provider/cli/hosts";
import { labHostEntries } from "./cli-hosts";
import { runCli } from "../provider/cli/main";
import { EXIT } from "../provider/cli/run";
import { removeHost } from "../provider/engine";
import { labStatus, labUp, userExec, type LabHost } from "./api";

const HOSTS = 2;
const lab = process.env.RDL_LAB ?? "lab";

async function main(): Promise<number> {
  const hosts = await demoHosts();
  const [slirpHost, pastaHost] = hosts;
  const dir = mkdtempSync(join(tmpdir(), "rdn-demo-"));
  try {
    const hostsFile = join(dir, "hosts.yaml");
    const settings = stringify({
      defaults: { networkDriver: "slirp4netns", ipv6: true, verify: { required: true, timeoutSeconds: 30 } },
      hosts: [{ name: pastaHost.name, networkDriver: "pasta", pastaIpv6Compat: true }],
    });
    writeFileSync(hostsFile, settings);
    banner(`The hosts file (the lab supplies each host's address, pinned host key and IPv6 target):\n\n${indent(settings)}`);
    await resetFromEarlierRun(hostsFile);

    const cli = ["--lab", "--hosts", hostsFile];
    const steps: [title: string, argv: string[], expected: number, before?: () => Promise<void>][] = [
      ["1. plan: what differs on the live hosts (file / effective / running)", ["plan", ...cli], EXIT.differs],
      ["2. apply: converge in waves and verify IPv6 from the namespace", ["apply", "--batch-size", "1", ...cli], EXIT.ok],
      ["3. plan again: nothing differs", ["plan", ...cli], EXIT.ok],
      [
        `4. someone edits the drop-in on ${slirpHost.name} by hand (MTU 65520 -> 1500); plan shows the drift`,
        ["plan", ...cli],
        EXIT.differs,
        () => handEdit(slirpHost),
      ],
      ["5. apply again: the drift is repaired and verified", ["apply", ...cli], EXIT.ok],
    ];
    const unexpected: string[] = [];
    for (const [title, argv, expected, before] of steps) {
      await before?.();
      banner(`${title}\n$ rootless-docker-net ${argv.map((arg) => (arg === hostsFile ? "hosts.yaml" : arg)).join(" ")}`);
      const code = await runCli(argv);
      process.stdout.write(`(exit code ${code})\n`);
      if (code !== expected) unexpected.push(`step ${title.split(".")[0]}: exit code ${code}, expected ${expected}`);
    }
    banner(
      unexpected.length === 0
        ? `Done. The lab "${lab}" is still running: try \`node dist/provider/cli/main.js plan --lab --hosts <file>\`; stop it with \`RDL_LAB=${lab} npm run lab -- down\`.`
        : `Some steps did not end as expected:\n${unexpected.map((line) => `  ${line}`).join("\n")}\nThe lab "${lab}" is still running for inspection; stop it with \`RDL_LAB=${lab} npm run lab -- down\`.`,
    );
    return unexpected.length === 0 ? 0 : 1;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The lab's Debian 13 hosts with Docker, booting the missing ones. */
async function demoHosts(): Promise<LabHost[]> {
  const usable = () => labStatus().filter((host) => host.profile === "trixie" && host.docker);
  const running = usable();
  if (running.length < HOSTS) {
    banner(`Starting lab "${lab}" with ${HOSTS - running.length} Debian 13 host(s) (the first run builds the root file system; later runs boot in seconds)`);
    await labUp({ hosts: HOSTS - running.length, profile: "trixie" });
  }
  return usable().slice(0, HOSTS);
}

/** A rerun starts where a fresh lab does: our settings removed from every host, as `pulumi destroy` would. */
async function resetFromEarlierRun(hostsFile: string): Promise<void> {
  const document = readHostsFile(hostsFile);
  if (!document.ok) throw new Error(JSON.stringify(document.problems));
  const hosts = resolveHosts(document.value, { lab: labHostEntries(labStatus()) });
  if (!hosts.ok) throw new Error(hosts.problems.map((problem) => `${problem.property}: ${problem.reason}`).join("\n"));
  const removed = await Promise.all(hosts.value.map(async (host) => ((await removeHost(host.spec)).restarted ? host.name : null)));
  const names = removed.filter((name) => name !== null);
  if (names.length > 0) banner(`Reset ${names.join(", ")} from an earlier demo run (removed our settings, as pulumi destroy would).`);
}

/** Changes the MTU in our drop-in the way a person with an editor would: no daemon-reload, no restart. */
async function handEdit(host: LabHost): Promise<void> {
  const result = await userExec(
    host.name,
    "sed -i 's/DOCKERD_ROOTLESS_ROOTLESSKIT_MTU=[0-9]*/DOCKERD_ROOTLESS_ROOTLESSKIT_MTU=1500/' ~/.config/systemd/user/docker.service.d/override.conf",
  );
  if (result.exitCode !== 0) throw new Error(`${host.name}: hand edit failed: ${result.stderr}`);
}

function banner(text: string): void {
  process.stdout.write(`\n${"=".repeat(100)}\n${text}\n${"=".repeat(100)}\n`);
}

const indent = (text: string) => text.replace(/^/gm, "    ");

main().then(
  (code) => (process.exitCode = code),
  (error: unknown) => {
    process.stderr.write(`demo: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
