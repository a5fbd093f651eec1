import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { describeWaveOutcome, mergeSettings, planWaves, waveOutcome } from "../../provider/core/waves";

const hosts = (count: number) => Array.from({ length: count }, (_, index) => `h${index + 1}`);

function waves(names: string[], options: Parameters<typeof planWaves>[1]): string[][] {
  const result = planWaves(names, options);
  assert.ok(result.ok, `expected valid options, got ${JSON.stringify(!result.ok && result.problems)}`);
  return result.value;
}

function problems(names: string[], options: Parameters<typeof planWaves>[1]): string[] {
  const result = planWaves(names, options);
  assert.equal(result.ok, false);
  return result.ok ? [] : result.problems.map((problem) => problem.property);
}

describe("planWaves", () => {
  it("splits into batches of batchSize, keeping the given order", () => {
    assert.deepEqual(waves(hosts(5), { batchSize: 2 }), [["h1", "h2"], ["h3", "h4"], ["h5"]]);
  });

  it("treats maxUnavailable as the number of hosts restarting together", () => {
    assert.deepEqual(waves(hosts(4), { maxUnavailable: 3 }), [["h1", "h2", "h3"], ["h4"]]);
  });

  it("puts a canary wave first: true is one host, a number is that many", () => {
    assert.deepEqual(waves(hosts(5), { batchSize: 2, canary: true }), [["h1"], ["h2", "h3"], ["h4", "h5"]]);
    assert.deepEqual(waves(hosts(5), { batchSize: 3, canary: 2 }), [["h1", "h2"], ["h3", "h4", "h5"]]);
    assert.deepEqual(waves(hosts(3), { batchSize: 3, canary: false }), [["h1", "h2", "h3"]]);
  });

  it("defaults to a quarter of the fleet per wave, at least one host", () => {
    assert.deepEqual(waves(hosts(8), {}), [["h1", "h2"], ["h3", "h4"], ["h5", "h6"], ["h7", "h8"]]);
    assert.deepEqual(waves(hosts(3), {}), [["h1"], ["h2"], ["h3"]]);
  });

  it("puts a single host in a single wave even with a canary", () => {
    assert.deepEqual(waves(["only"], { canary: true }), [["only"]]);
  });

  it("reports every problem at once with its property path", () => {
    assert.deepEqual(problems(["a", "b", "a", ""], { batchSize: 0, maxUnavailable: 1.5, canary: -1 }), [
      "hosts[2].name",
      "hosts[3].name",
      "batchSize",
      "maxUnavailable",
      "maxUnavailable",
      "canary",
    ]);
  });

  it("refuses an empty fleet and a canary that leaves nothing for later waves", () => {
    assert.deepEqual(problems([], {}), ["hosts"]);
    assert.deepEqual(problems(hosts(2), { canary: 2 }), ["canary"]);
  });

  it("names the duplicate's first occurrence", () => {
    const result = planWaves(["a", "b", "a"]);
    assert.ok(!result.ok);
    assert.match(result.problems[0].reason, /hosts\[0\]/);
  });
});

describe("waveOutcome", () => {
  const rollout = [["h1", "h2"], ["h3", "h4"], ["h5"]];

  it("marks earlier waves done, the failing wave split, later waves untouched", () => {
    assert.deepEqual(waveOutcome(rollout, ["h4"]), { done: ["h1", "h2", "h3"], failed: ["h4"], untouched: ["h5"] });
    assert.equal(describeWaveOutcome(waveOutcome(rollout, ["h1", "h2"])), "done: none; failed: h1, h2; untouched: h3, h4, h5");
  });

  it("reports everything done when nothing failed", () => {
    assert.deepEqual(waveOutcome(rollout, []), { done: ["h1", "h2", "h3", "h4", "h5"], failed: [], untouched: [] });
  });
});

describe("mergeSettings", () => {
  it("merges mappings key by key and lets the host's lists and scalars win", () => {
    const shared = { ipv6: true, connection: { user: "dev", port: 22 }, verify: { targets: [{ address: "fd99::1" }], timeoutSeconds: 30 } };
    const own = { connection: { host: "10.0.0.5", port: 2222 }, verify: { targets: [{ address: "fd99::2" }] }, networkDriver: "pasta" };
    assert.deepEqual(mergeSettings(shared, own), {
      ipv6: true,
      networkDriver: "pasta",
      connection: { user: "dev", port: 2222, host: "10.0.0.5" },
      verify: { targets: [{ address: "fd99::2" }], timeoutSeconds: 30 },
    });
  });

  it("keeps the shared value where the host says nothing", () => {
    assert.deepEqual(mergeSettings({ mtu: 65520 }, { mtu: undefined }), { mtu: 65520 });
  });
});
