/**
 * The benchmark's pure parts: reading memory from /proc/PID/status, walking a process tree through the children
 * files, and the Pulumi rows' ratios, target and cost breakdown (no timing is asserted).
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { describe, it } from "node:test";
import { processTree, runMeasured, statusMemory } from "../../bench/memory";
import { engineCosts, investigate, pulumiSpeedup, TARGET_PULUMI_HOSTS, type Context, type Row } from "../../bench/report";

describe("statusMemory", () => {
  it("reads VmRSS and VmHWM in KiB", () => {
    assert.deepEqual(statusMemory("Name:\tnode\nVmPeak:\t  900 kB\nVmHWM:\t   51200 kB\nVmRSS:\t   40960 kB\nThreads:\t7\n"), { rssKiB: 40960, hwmKiB: 51200 });
  });

  it("gives null for a zombie, which has no memory lines", () => {
    assert.equal(statusMemory("Name:\tsh\nState:\tZ (zombie)\nThreads:\t1\n"), null);
  });
});

describe("processTree", () => {
  it("follows the children of every thread, and skips processes that exited while it reads", () => {
    const children: Record<string, string> = {
      "/proc/1/task/1/children": "2 3 ",
      "/proc/1/task/9/children": "4",
      "/proc/2/task/2/children": "5",
      "/proc/3/task/3/children": "",
    };
    const tasks: Record<string, string[]> = { "/proc/1/task": ["1", "9"], "/proc/2/task": ["2"], "/proc/3/task": ["3"] };
    const read = (path: string) => {
      if (!(path in children)) throw new Error("ENOENT");
      return children[path];
    };
    const list = (path: string) => {
      if (!(path in tasks)) throw new Error("ENOENT");
      return tasks[path];
    };
    assert.deepEqual([...processTree(1, read, list)].sort(), [1, 2, 3, 4, 5]);
  });

  it("finds a real grandchild of this process", async () => {
    const child = spawn("sh", ["-c", "sleep 30 & wait"], { stdio: "ignore" });
    try {
      let tree: number[] = [];
      for (let attempt = 0; attempt < 100 && tree.length < 3; attempt++) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        tree = processTree(process.pid);
      }
      assert.ok(tree.includes(child.pid!), `${child.pid} not in ${tree.join(" ")}`);
      assert.ok(tree.length >= 3, `no grandchild under ${child.pid}: ${tree.join(" ")}`);
    } finally {
      child.kill("SIGKILL");
      await once(child, "exit");
    }
  });
});

describe("runMeasured", () => {
  it("counts the memory of a child's children, not only the child's", async () => {
    // The shell itself is small; the node it starts is tens of MiB.
    const { result, memory } = await runMeasured(["sh", "-c", `"${process.execPath}" -e "setTimeout(() => {}, 300)"; echo done`]);
    assert.equal(result.exitCode, 0);
    assert.equal(result.stdout.trim(), "done");
    assert.ok(memory.samples > 1);
    assert.ok(memory.peakRssKiB > 20 * 1024, `peak ${memory.peakRssKiB} KiB`);
  });
});

function row(hosts: number, pulumiMs: number, ansibleMs: number): Row {
  const plan = { wallMs: 500, peakRssKiB: 100 * 1024, connectionsPerHost: 1, roundTripsPerHost: 1 };
  return {
    hosts,
    latencyMs: 0,
    ssh2Floor: { wallMs: 400, connectionsPerHost: 1 },
    opensshFloor: { wallMs: 800, connectionsPerHost: 1 },
    grpc: plan,
    grpcHostStartMs: 300,
    grpcWarmMs: 450,
    ssh2FactsScriptMs: 450,
    cli: plan,
    pulumi: { ...plan, wallMs: pulumiMs, startupMs: 1000, startupPeakRssKiB: 200 * 1024, createsMs: 2000, parallelDiffMs: pulumiMs - 1500, parallelDiffUnboundedMs: pulumiMs - 1600 },
    ansible: { wallMs: ansibleMs, connectionsPerHost: 1, roundTripsPerHost: 8, peakRssKiB: 300 * 1024 },
  };
}

const context: Context = {
  quick: false,
  pulumiVersion: "v3.248.0",
  runs: 5,
  grpcParallelism: 8,
  latencyMethod: "",
  facts: [],
  startup: { nodeMs: 60, versionMs: 100, planHelpMs: 100, cliUsageMs: 200, providerModulesMs: 120, pulumiCliMs: 250, pulumiSdkMs: 900 },
  startedAt: "",
  durationS: 0,
};

describe("pulumi preview rows", () => {
  it("compares with Ansible as run and with the empty preview's start-up taken out", () => {
    assert.deepEqual(pulumiSpeedup(row(30, 3000, 12000)), { withStartup: 4, withoutStartup: 6, parallelDiff: 8 });
  });

  it("splits the preview into start-up, provider host, plan and what is left for the engine per resource", () => {
    // 3000 - 1000 start-up - 300 host start - 500 plan = 1200 over 30 resources.
    const text = engineCosts(row(30, 3000, 12000), context);
    assert.match(text, /start-up \(the empty preview\) 1000 ms/);
    assert.match(text, /left for the engine around the resources 1200 ms \(40 ms per resource\)/);
    assert.match(text, /nothing in the state .* took 2000 ms, 1000 ms over the empty preview/);
    assert.match(text, /with it the preview took 1500 ms \(1500 ms less\), and 1400 ms with `--parallel 30` instead of the default 8/);
  });

  it(`reports a miss only for ${TARGET_PULUMI_HOSTS} hosts below 3×, with the breakdown`, () => {
    const pulumiFindings = (rows: Row[]) => investigate(rows, context).filter((finding) => finding.includes("`pulumi preview` is only"));
    assert.deepEqual(pulumiFindings([row(30, 3000, 12000), row(10, 3000, 3000)]), []);
    const [missed, ...rest] = pulumiFindings([row(30, 5000, 12000)]);
    assert.equal(rest.length, 0);
    assert.match(missed, /^- 30 host\(s\), 0 ms: `pulumi preview` is only 2\.40× faster .* without the engine's start-up 3\.00×\. Measured: `pulumi preview` 5000 ms/);
  });
});
