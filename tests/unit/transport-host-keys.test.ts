import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { hostLabel } from "../../provider/transport";
import { checkHostKey, knownHostsName, parsePinnedHostKey } from "../../provider/transport/host-keys";
import { generateKeyPair } from "../helpers/ssh-server";

const offered = generateKeyPair().publicKey;
const blob = Buffer.from(offered.split(" ")[1]!, "base64");

function verdict(knownHosts: string, host: string, port = 22) {
  return checkHostKey(blob, { kind: "known-hosts", path: "/k", text: knownHosts }, { host, port });
}

describe("known_hosts host patterns", () => {
  it("matches wildcards and comma lists, case-insensitively", () => {
    assert.equal(verdict(`web-?.lab,*.example ${offered}`, "WEB-1.lab").accepted, true);
    assert.equal(verdict(`web-?.lab,*.example ${offered}`, "a.b.example").accepted, true);
    assert.equal(verdict(`web-?.lab ${offered}`, "web-10.lab").accepted, false);
  });

  it("lets a negated pattern win over a matching one", () => {
    assert.equal(verdict(`*.lab,!db.lab ${offered}`, "db.lab").accepted, false);
    assert.equal(verdict(`*.lab,!db.lab ${offered}`, "web.lab").accepted, true);
  });

  it("skips comments, blank lines and unknown markers", () => {
    assert.equal(verdict(`# ${offered}\n\n@bogus host ${offered}\n`, "host").accepted, false);
  });

  it("treats a key of another type for the host as unknown, not as changed", () => {
    const rsaLike = `host ssh-rsa ${Buffer.concat([Buffer.from([0, 0, 0, 7]), Buffer.from("ssh-rsa"), Buffer.alloc(8)]).toString("base64")}`;
    const result = verdict(rsaLike, "host");
    assert.equal(result.accepted, false);
    assert.equal(!result.accepted && result.reason, "unknown");
  });
});

describe("names and pins", () => {
  it("uses the bare host on port 22 and [host]:port elsewhere, IPv6 included", () => {
    assert.equal(knownHostsName("fd77::2", 22), "fd77::2");
    assert.equal(knownHostsName("fd77::2", 2222), "[fd77::2]:2222");
    assert.equal(hostLabel({ user: "dev", host: "fd77::2", port: 22 }), "dev@[fd77::2]:22");
    assert.equal(hostLabel({ user: "dev", host: "10.77.0.2", port: 22 }), "dev@10.77.0.2:22");
  });

  it("parses key lines whose type matches the blob, and fingerprints with or without padding", () => {
    assert.ok(parsePinnedHostKey(`${offered} comment here`));
    assert.equal(parsePinnedHostKey(offered.replace("ssh-ed25519", "ssh-rsa")), null);
    assert.deepEqual(parsePinnedHostKey("SHA256:abc+/="), { fingerprint: "SHA256:abc+/" });
    assert.equal(parsePinnedHostKey("MD5:aa:bb"), null);
  });
});
