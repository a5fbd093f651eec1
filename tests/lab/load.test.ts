/**
 * Load (issue 4, point 5): a CLI plan over a fleet of lab hosts without Docker answers for every host, with
 * bounded memory, and leaves no file descriptor or child process behind in this process.
 * RDL_LOAD_HOSTS overrides the fleet size (default 50, the issue's number).
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { after, before, it } from "node:test";

process.env.RDL_LAB = "loadtest";

import { labDown, labUp, type LabHost } from "../../lab/api";
import { runCli } from "../../provider/cli/main";
import type { PlanReport } from "../../provider/cli/run";
import * as engine from "../../provider/engine";

const HOSTS = Number(process.env.RDL_LOAD_HOSTS ?? 50);
/** Far above what a plan needs (each host's facts are a few KB) and far below what leaking sessions would reach. */
const MAX_RSS_BYTES = 512 * 1024 * 1024;

let hosts: LabHost[];

before(async () => {
  await labDown();
  hosts = await labUp({ hosts: HOSTS, docker: false });
});
after(() => labDown());

/** `fd → target` of this process's descriptors (the listing's own descriptor is gone by the time it is read). */
function openFds(): string[] {
  return readdirSync("/proc/self/fd").flatMap((fd) => {
    try {
      return [`${fd} -> ${readlinkSync(`/proc/self/fd/${fd}`)}`];
    } catch {
      return [];
    }
  });
}

function childPids(): number[] {
  return readdirSync("/proc/self/task").flatMap((task) =>
    readFileSync(`/proc/self/task/${task}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number),
  );
}

it(`plan over ${HOSTS} lab hosts: every host answered, no descriptor or child process left, bounded memory`, async () => {
  assert.equal(hosts.length, HOSTS);
  const fdsBefore = openFds();
  const childrenBefore = childPids();
  const started = Date.now();

  let stdout = "";
  await runCli(["plan", "--lab", "--json"], { stdout: (text) => (stdout += text), stderr: () => undefined, interactive: false, engine });
  const seconds = (Date.now() - started) / 1000;
  const report = JSON.parse(stdout) as PlanReport;

  assert.deepEqual(report.hosts.map((row) => row.name).sort(), hosts.map((host) => host.name).sort());
  const unanswered = report.hosts.filter((row) => row.status === "error" || row.host === undefined);
  assert.deepEqual(unanswered.map((row) => `${row.name}: ${row.error?.message}`), []);

  // A closed session's socket goes once the host has answered the SSH disconnect: wait for that, bounded.
  await settle(() => openFds().every((fd) => fdsBefore.includes(fd)));
  assert.deepEqual(openFds().filter((fd) => !fdsBefore.includes(fd)), [], "descriptors left open");
  assert.deepEqual(childPids(), childrenBefore);
  const peakRss = process.resourceUsage().maxRSS * 1024;
  process.stderr.write(`load: plan over ${HOSTS} hosts in ${seconds.toFixed(1)} s, peak RSS ${(peakRss / 1024 / 1024).toFixed(0)} MiB, statuses ${JSON.stringify(countBy(report.hosts.map((row) => row.status)))}\n`);
  assert.ok(peakRss < MAX_RSS_BYTES, `peak RSS ${peakRss} bytes`);
});

/** Polls until `done` holds or 10 s have passed (the assertion that follows reports what is still left). */
async function settle(done: () => boolean): Promise<void> {
  for (let attempt = 0; attempt < 100 && !done(); attempt += 1) await new Promise((resolve) => setTimeout(resolve, 100));
}

function countBy(values: string[]): Record<string, number> {
  return values.reduce<Record<string, number>>((counts, value) => ({ ...counts, [value]: (counts[value] ?? 0) + 1 }), {});
}
