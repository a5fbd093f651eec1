/**
 * A user's app outside the repository: the packed package plus the newest `@pulumi/pulumi` from the registry.
 * It gets a single copy of the SDK (ours is a peer dependency), and a `pulumi up` and `pulumi preview --refresh`
 * of a small program converge a lab host under Node.js 24 (Debian forky's, in a debootstrapped tree) with that
 * SDK: Node 20 reached end of life in April 2026 and the newest SDKs need Node 22 or later.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { LabHost } from "../../lab/api";
import { CHECKOUT } from "../../tools/pulumi/build";
import { installApp, packCheckout } from "../helpers/fresh-app";
import { ensureNodeTree, runInTree } from "../helpers/node-tree";
import { pulumiEnv, pulumiTools } from "../helpers/pulumi-cli";

process.env.RDL_LAB = "rdlnode24";
// Loaded after RDL_LAB is set: the lab picks its instance from the environment.
const { labDown, labUp, userExec } = require("../../lab/api") as typeof import("../../lab/api");

const DEV_PULUMI = (JSON.parse(readFileSync(join(CHECKOUT, "package.json"), "utf8")) as { devDependencies: Record<string, string> }).devDependencies["@pulumi/pulumi"];

const PROGRAM = `"use strict";
const fs = require("fs");
const pulumi = require("@pulumi/pulumi");
const { RootlessDockerNetwork } = require("pulumi-rootless-docker");

const config = new pulumi.Config();
const network = new RootlessDockerNetwork("node24", {
  connection: {
    host: config.require("host"),
    port: config.requireNumber("port"),
    user: config.require("user"),
    hostKey: config.require("hostKey"),
    privateKey: pulumi.secret(fs.readFileSync(config.require("privateKeyPath"), "utf8")),
  },
  networkDriver: "slirp4netns",
  ipv6: true,
  verify: { targets: [{ address: config.require("target"), tcpPort: config.requireNumber("targetPort") }], timeoutSeconds: 30 },
});
exports.node = process.version;
exports.sdk = require("@pulumi/pulumi/package.json").version;
exports.networkDriverInEffect = network.networkDriverInEffect;
`;

/** Every package's copy of @pulumi/pulumi in `npm ls` (path → version). */
function pulumiCopies(tree: { dependencies?: Record<string, unknown> }, path = ""): Map<string, string> {
  const copies = new Map<string, string>();
  for (const [name, child] of Object.entries(tree.dependencies ?? {})) {
    const node = child as { version?: string; dependencies?: Record<string, unknown> };
    if (name === "@pulumi/pulumi" && node.version) copies.set(`${path}${name}`, node.version);
    for (const [where, version] of pulumiCopies(node, `${path}${name} > `)) copies.set(where, version);
  }
  return copies;
}

describe("an app with the newest @pulumi/pulumi", { timeout: 1_800_000 }, () => {
  let work: string;
  let app: string;
  let host: LabHost;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), "rdn-newest-pulumi-"));
    app = join(work, "app");
    installApp(app, packCheckout(work), ["@pulumi/pulumi@latest"]);
  });

  after(async () => {
    if (host) await labDown();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it("has one copy of @pulumi/pulumi, its own, newer than the one this repository develops with", () => {
    const tree = JSON.parse(execFileSync("npm", ["ls", "@pulumi/pulumi", "--all", "--json"], { cwd: app, encoding: "utf8" })) as { dependencies?: Record<string, unknown> };
    const copies = pulumiCopies(tree);
    const versions = new Set(copies.values());
    assert.equal(versions.size, 1, `several copies: ${JSON.stringify([...copies])}`);
    const [version] = versions;
    assert.notEqual(version, DEV_PULUMI, "the registry's newest is the version this repository develops with: nothing newer to prove");
    // The package resolves the app's copy, not one of its own.
    const fromPackage = require.resolve("@pulumi/pulumi", { paths: [join(app, "node_modules", "pulumi-rootless-docker")] });
    assert.equal(fromPackage, require.resolve("@pulumi/pulumi", { paths: [app] }));
  });

  it("converges a lab host with pulumi up, then pulumi preview --refresh finds nothing, under Node 24", async () => {
    const [tree, tools, hosts] = await Promise.all([ensureNodeTree((line) => process.stderr.write(`${line}\n`)), pulumiTools(), labUp({ hosts: 1, profile: "trixie" })]);
    host = hosts[0];
    const keyPath = join(app, "id_ed25519");
    copyFileSync(host.privateKeyPath, keyPath);
    writeFileSync(join(app, "Pulumi.yaml"), "name: node24\nruntime: nodejs\nmain: index.js\n");
    writeFileSync(join(app, "index.js"), PROGRAM);

    const env = await pulumiEnv(join(app, ".pulumi-state"));
    const inside: Record<string, string> = { HOME: "/root", PATH: `${tools.binDir}:/usr/bin:/bin` };
    for (const [name, value] of Object.entries(env)) if (/^(PULUMI_|RDN_)/.test(name) && value !== undefined) inside[name] = value;
    const pulumi = async (...args: string[]) => {
      const result = await runInTree(tree, ["pulumi", ...args], {
        binds: [CHECKOUT, dirname(tools.binDir), work],
        cwd: app,
        env: inside,
        timeoutMs: 10 * 60_000,
      });
      return { ...result, output: `pulumi ${args.join(" ")} exited ${result.exitCode}:\n${result.stdout}\n${result.stderr}` };
    };

    const init = await pulumi("stack", "init", "node24", "--non-interactive");
    assert.equal(init.exitCode, 0, init.output);
    const values = { host: host.address, port: String(host.port), user: host.user, hostKey: host.hostPublicKey, privateKeyPath: keyPath, target: host.target.ipv6, targetPort: String(host.target.ipv6TcpPort) };
    const config = await pulumi("config", "set-all", ...Object.entries(values).flatMap(([name, value]) => ["--plaintext", `${name}=${value}`]));
    assert.equal(config.exitCode, 0, config.output);

    const up = await pulumi("up", "--yes", "--skip-preview", "--non-interactive");
    assert.equal(up.exitCode, 0, up.output);
    const outputs = await pulumi("stack", "output", "--json");
    assert.equal(outputs.exitCode, 0, outputs.output);
    const { node, sdk, networkDriverInEffect } = JSON.parse(outputs.stdout) as Record<string, string>;
    assert.match(node, /^v24\./);
    assert.equal(sdk, JSON.parse(readFileSync(join(app, "node_modules", "@pulumi", "pulumi", "package.json"), "utf8")).version);
    assert.equal(networkDriverInEffect, "slirp4netns");
    const dropIn = await userExec(host.name, "cat ~/.config/systemd/user/docker.service.d/override.conf");
    assert.match(dropIn.stdout, /DOCKERD_ROOTLESS_ROOTLESSKIT_NET=slirp4netns/);

    const preview = await pulumi("preview", "--refresh", "--expect-no-changes", "--non-interactive");
    assert.equal(preview.exitCode, 0, preview.output);
  });
});
