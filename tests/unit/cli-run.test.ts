import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { NetworkSpec, PropertyChange, VerificationResult } from "../../provider/core/types";
import type { ApplyResult, InspectResult } from "../../provider/engine/types";
import { ConnectionError } from "../../provider/errors/connection-error";
import { VerificationError } from "../../provider/errors/verification-error";
import { renderReport } from "../../provider/cli/render";
import { mapBounded, runApply, runPlan, runVerify, type Engine } from "../../provider/cli/run";
import type { ResolvedHost } from "../../provider/cli/hosts";
import { NO_DAEMON } from "../../provider/core/running";

/** Hosts whose spec carries only the name, so the fake engine can tell them apart. */
const hosts = (...names: string[]): ResolvedHost[] =>
  names.map((name) => ({ name, spec: { connection: { host: name }, unit: "docker.service" } as unknown as NetworkSpec, warnings: [] }));
const nameOf = (spec: NetworkSpec) => spec.connection.host;

const driverChange: PropertyChange = { level: "file", property: "networkDriver", desired: "pasta", actual: "slirp4netns" };
const namespacePath: VerificationResult["namespace"] = { path: "namespace", reachable: true, diagnosis: "reachable", detail: "", addresses: [], defaultRoute: null, targets: [] };
const reachable: VerificationResult = { reachable: true, covers: "namespace", namespace: namespacePath, container: null, icmp: true, tcp: true, rttMs: 1, checkedAt: "now", diagnosis: "reachable", detail: "", paths: [namespacePath] };
const unreachable: VerificationResult = { ...reachable, reachable: false, icmp: false, tcp: false, diagnosis: "no-global-ipv6-address" };

function inspectResult(name: string, changes: PropertyChange[], problems: InspectResult["plan"]["problems"] = []): InspectResult {
  return {
    host: `dev@${name}:22`,
    plan: {
      changes,
      problems,
      writes: [],
      daemonReload: false,
      restart: false,
      compatInUse: false,
      differs: changes.length > 0,
      daemonReloadReason: "no unit file changes: no daemon-reload",
      restartReason: "the running daemon already has the declared settings: no restart",
    },
    facts: { dropIn: { path: "/home/dev/.config/systemd/user/docker.service.d/override.conf" }, daemonJson: { path: "/home/dev/.config/docker/daemon.json" }, compatScript: { path: "/home/dev/.local/lib/x" } },
    running: { ...NO_DAEMON, networkDriver: "slirp4netns", portDriver: "builtin", ipv6: false, mtu: 1500, disableHostLoopback: true },
  } as unknown as InspectResult;
}

function applyResult(name: string, verification: VerificationResult | null = reachable): ApplyResult {
  const done = inspectResult(name, []).plan;
  return { ...inspectResult(name, [driverChange]), postPlan: done, wrote: true, restarted: true, warnings: [], verification } as unknown as ApplyResult;
}

const connectionError = (name: string) => new ConnectionError("connection refused", "start sshd", { host: `dev@${name}:22`, step: "connect" });

/** An engine that fails every call; tests override what they use. */
function engine(overrides: Partial<Engine>): Engine {
  const unexpected = async () => assert.fail("unexpected engine call");
  return { inspectHost: unexpected, applyHost: unexpected, verifyHost: unexpected, ...overrides };
}

describe("runPlan", () => {
  it("exits 2 when a host differs and names the host and property in the table", async () => {
    const report = await runPlan(hosts("web1", "web2"), {
      concurrency: 2,
      engine: engine({ inspectHost: async (spec) => inspectResult(nameOf(spec), nameOf(spec) === "web2" ? [driverChange] : []) }),
    });
    assert.equal(report.exitCode, 2);
    assert.deepEqual(report.hosts.map((row) => row.status), ["in-sync", "differs"]);
    const text = renderReport(report);
    assert.match(text, /web2 \(dev@web2:22\): DIFFERS/);
    assert.match(text, /\n  networkDriver\s+pasta\s+slirp4netns\s+-\s+-\n/);
  });

  it("renders one row per property with the three levels side by side, `=` where a level is as desired", async () => {
    const variable = (suffix: string, desired: string, actual?: string): PropertyChange[] => [
      { level: "file", property: `DOCKERD_ROOTLESS_ROOTLESSKIT_${suffix}`, desired, actual },
      { level: "effective", property: `DOCKERD_ROOTLESS_ROOTLESSKIT_${suffix}`, desired, actual, cause: "our drop-in does not say so yet" },
      { level: "running", property: `DOCKERD_ROOTLESS_ROOTLESSKIT_${suffix}`, desired, actual, cause: "pending restart" },
    ];
    // A fresh host: four variables on three levels are twelve changes; the MTU only differs in the file (a hand edit).
    const fresh = [...variable("NET", "pasta", "slirp4netns"), ...variable("PORT_DRIVER", "implicit", "builtin"), ...variable("FLAGS", "--ipv6")];
    const handEdit: PropertyChange = { level: "file", property: "DOCKERD_ROOTLESS_ROOTLESSKIT_MTU", desired: "65520", actual: "1500" };
    const report = await runPlan(hosts("fresh"), { concurrency: 1, engine: engine({ inspectHost: async () => inspectResult("fresh", [...fresh, handEdit]) }) });
    const lines = renderReport(report).split("\n");
    const header = lines.findIndex((line) => /^\s+property\s+input\s+desired\s+file\s+effective\s+running\s+cause$/.test(line));
    assert.ok(header >= 0, lines.join("\n"));
    const rows = lines.slice(header + 1, header + 5).map((line) => line.trim().split(/\s{2,}/));
    assert.deepEqual(rows, [
      ["DOCKERD_ROOTLESS_ROOTLESSKIT_NET", "networkDriver", "pasta", "slirp4netns", "slirp4netns", "slirp4netns", "our drop-in does not say so yet; pending restart"],
      ["DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER", "portDriver", "implicit", "builtin", "builtin", "builtin", "our drop-in does not say so yet; pending restart"],
      ["DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS", "ipv6, extraFlags", "--ipv6", "(unset)", "(unset)", "(unset)", "our drop-in does not say so yet; pending restart"],
      ["DOCKERD_ROOTLESS_ROOTLESSKIT_MTU", "mtu", "65520", "1500", "=", "="],
    ]);
    assert.doesNotMatch(lines[header + 5] ?? "", /DOCKERD_/);
  });

  it("keeps the full change list, level by level, in the report machines get", async () => {
    const changes: PropertyChange[] = [driverChange, { ...driverChange, level: "running", cause: "pending restart" }];
    const report = await runPlan(hosts("web1"), { concurrency: 1, engine: engine({ inspectHost: async () => inspectResult("web1", changes) }) });
    assert.deepEqual(JSON.parse(JSON.stringify(report)).hosts[0].changes, changes);
  });

  it("exits 0 when nothing differs", async () => {
    const report = await runPlan(hosts("web1"), { concurrency: 1, engine: engine({ inspectHost: async (spec) => inspectResult(nameOf(spec), []) }) });
    assert.equal(report.exitCode, 0);
  });

  it("reports a dead host as an error row, still plans the others, and exits 1", async () => {
    const report = await runPlan(hosts("dead", "web2"), {
      concurrency: 1,
      engine: engine({
        inspectHost: async (spec) => {
          if (nameOf(spec) === "dead") throw connectionError("dead");
          return inspectResult(nameOf(spec), [driverChange]);
        },
      }),
    });
    assert.equal(report.exitCode, 1);
    assert.deepEqual(report.hosts.map((row) => row.status), ["error", "differs"]);
    assert.equal(report.hosts[0].error?.type, "ConnectionError");
    assert.deepEqual(report.hosts[0].error, { type: "ConnectionError", host: "dev@dead:22", step: "connect", message: "connection refused", fix: "start sshd", evidence: [] });
    assert.match(renderReport(report), /ConnectionError: dev@dead:22: connect: connection refused\n {4}fix: start sshd/);
  });

  it("marks a host with capability errors as blocked and exits 1", async () => {
    const problem = { severity: "error" as const, message: "rootlesskit 1.1.0 has no pasta", hint: "use slirp4netns" };
    const report = await runPlan(hosts("old"), { concurrency: 1, engine: engine({ inspectHost: async () => inspectResult("old", [driverChange], [problem]) }) });
    assert.equal(report.hosts[0].status, "blocked");
    assert.equal(report.exitCode, 1);
    assert.match(renderReport(report), /error: rootlesskit 1.1.0 has no pasta\n\s+fix: use slirp4netns/);
  });
});

describe("runApply", () => {
  it("starts a wave only after every host of the previous wave finished", async () => {
    const events: string[] = [];
    const report = await runApply(hosts("h1", "h2", "h3", "h4", "h5"), [["h1", "h2"], ["h3", "h4"], ["h5"]], {
      concurrency: 8,
      engine: engine({
        applyHost: async (spec) => {
          events.push(`start ${nameOf(spec)}`);
          await new Promise((resolve) => setImmediate(resolve));
          events.push(`end ${nameOf(spec)}`);
          return applyResult(nameOf(spec));
        },
      }),
    });
    assert.equal(report.exitCode, 0);
    assert.deepEqual(events, ["start h1", "start h2", "end h1", "end h2", "start h3", "start h4", "end h3", "end h4", "start h5", "end h5"]);
    assert.deepEqual(report.outcome, { done: ["h1", "h2", "h3", "h4", "h5"], failed: [], untouched: [] });
  });

  it("stops the later waves when a host fails and says which hosts are done, failed and untouched", async () => {
    const called: string[] = [];
    const report = await runApply(hosts("h1", "h2", "h3", "h4", "h5"), [["h1", "h2"], ["h3", "h4"], ["h5"]], {
      concurrency: 8,
      engine: engine({
        applyHost: async (spec) => {
          called.push(nameOf(spec));
          if (nameOf(spec) === "h3") throw new VerificationError("IPv6 is not reachable", "set ipv6: true", { host: "dev@h3:22", step: "verify" });
          return applyResult(nameOf(spec));
        },
      }),
    });
    assert.deepEqual(called, ["h1", "h2", "h3", "h4"]);
    assert.equal(report.exitCode, 1);
    assert.equal(report.stoppedAtWave, 2);
    assert.deepEqual(report.hosts.map((row) => `${row.name}:${row.status}`), ["h1:converged", "h2:converged", "h3:failed", "h4:converged", "h5:untouched"]);
    assert.match(renderReport(report), /wave 2 of 3 failed; later waves were not started\. done: h1, h2, h4; failed: h3; untouched: h5; exit code 1/);
  });

  it("treats an unreachable (not required) verification as a stop, exit 2", async () => {
    const report = await runApply(hosts("h1", "h2"), [["h1"], ["h2"]], {
      concurrency: 1,
      engine: engine({ applyHost: async (spec) => applyResult(nameOf(spec), unreachable) }),
    });
    assert.equal(report.exitCode, 2);
    assert.deepEqual(report.hosts.map((row) => row.status), ["unreachable", "untouched"]);
  });
});

describe("runVerify", () => {
  it("exits 2 when a host is unreachable and 1 when one cannot be checked", async () => {
    const verifyHost = async (spec: NetworkSpec) => {
      if (nameOf(spec) === "dead") throw connectionError("dead");
      return nameOf(spec) === "v6less" ? unreachable : reachable;
    };
    assert.equal((await runVerify(hosts("ok", "v6less"), { concurrency: 2, engine: engine({ verifyHost }) })).exitCode, 2);
    assert.equal((await runVerify(hosts("ok", "v6less", "dead"), { concurrency: 2, engine: engine({ verifyHost }) })).exitCode, 1);
    assert.equal((await runVerify(hosts("ok"), { concurrency: 2, engine: engine({ verifyHost }) })).exitCode, 0);
  });
});

describe("mapBounded", () => {
  it("never runs more than the limit at once and keeps the order", async () => {
    let running = 0;
    let peak = 0;
    const results = await mapBounded([1, 2, 3, 4, 5, 6, 7], 3, async (item) => {
      running++;
      peak = Math.max(peak, running);
      await new Promise((resolve) => setImmediate(resolve));
      running--;
      return item * 10;
    });
    assert.equal(peak, 3);
    assert.deepEqual(results, [10, 20, 30, 40, 50, 60, 70]);
  });
});

describe("the plan says what the apply will do", () => {
  it("lists each file with its diff on request, daemon-reload and restart with the reason, and counts the hosts that restart", async () => {
    const dropIn = "/home/dev/.config/systemd/user/docker.service.d/override.conf";
    const restarting = (name: string): InspectResult => {
      const base = inspectResult(name, [driverChange]);
      return {
        ...base,
        facts: { ...base.facts, dropIn: { path: dropIn, content: "[Service]\nEnvironment=DOCKERD_ROOTLESS_ROOTLESSKIT_NET=slirp4netns\n" } },
        plan: {
          ...base.plan,
          writes: [{ path: dropIn, content: "[Service]\nEnvironment=DOCKERD_ROOTLESS_ROOTLESSKIT_NET=pasta\n", mode: 0o644 }],
          daemonReload: true,
          restart: true,
          daemonReloadReason: `${dropIn} changes: systemd reads drop-ins only at daemon-reload`,
          restartReason: "networkDriver (DOCKERD_ROOTLESS_ROOTLESSKIT_NET): running --net=slirp4netns, declared pasta",
        },
      } as InspectResult;
    };
    const report = await runPlan(hosts("web1", "web2"), {
      concurrency: 1,
      diff: true,
      engine: engine({ inspectHost: async (spec) => (nameOf(spec) === "web1" ? restarting("web1") : inspectResult("web2", [])) }),
    });
    assert.deepEqual(report.summary, { hosts: 2, statuses: { differs: 1, "in-sync": 1 }, restart: ["web1"] });
    const [web1, web2] = report.hosts;
    assert.deepEqual(web1.actions?.files, [
      {
        path: dropIn,
        role: "drop-in",
        action: "update",
        mode: "644",
        diff: `--- ${dropIn}\n+++ ${dropIn}\n@@ -1,2 +1,2 @@\n [Service]\n-Environment=DOCKERD_ROOTLESS_ROOTLESSKIT_NET=slirp4netns\n+Environment=DOCKERD_ROOTLESS_ROOTLESSKIT_NET=pasta\n`,
      },
    ]);
    assert.deepEqual(web2.actions?.restart, { will: false, reason: "the running daemon already has the declared settings: no restart" });
    const text = renderReport(report);
    assert.match(text, /\n {4}writes \/home\/dev\/\.config\/systemd\/user\/docker\.service\.d\/override\.conf \(drop-in, mode 644\)\n/);
    assert.match(text, /\n {4}daemon-reload: yes \(.*override\.conf changes: systemd reads drop-ins only at daemon-reload\)\n/);
    assert.match(text, /\n {4}restart docker\.service: yes \(networkDriver \(DOCKERD_ROOTLESS_ROOTLESSKIT_NET\): running --net=slirp4netns, declared pasta\)\n/);
    assert.match(text, /\n {4}\+Environment=DOCKERD_ROOTLESS_ROOTLESSKIT_NET=pasta\n/);
    assert.match(text, /\n {4}restart docker\.service: no \(the running daemon already has the declared settings: no restart\)/);
    assert.match(text, /plan: 2 host\(s\): 1 differs, 1 in-sync; 1 will restart Docker \(web1\); exit code 2/);
  });
});
