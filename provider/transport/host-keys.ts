/**
 * Host-key checking, OpenSSH-compatible: pinned keys, SHA256 fingerprints and known_hosts entries
 * (plain, hashed, `[host]:port`, `@revoked`). Works on text and key blobs only; the session reads files.
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";

/** A key as the host offered it: the raw SSH wire blob and its printable forms. */
export interface OfferedKey {
  type: string;
  base64: string;
  /** `SHA256:…` as `ssh-keygen -l` prints it (unpadded base64). */
  fingerprint: string;
}

export type HostKeyVerdict =
  | { accepted: true }
  | { accepted: false; reason: "unknown" | "changed" | "revoked"; summary: string; hint: string };

/** Where the expected key comes from: a pinned `hostKey`, or a known_hosts file (text null = file missing). */
export type HostKeySource =
  | { kind: "pinned"; hostKey: string }
  | { kind: "known-hosts"; path: string; text: string | null };

/** The SSH wire blob starts with the key type as a length-prefixed string. */
export function describeKey(blob: Buffer): OfferedKey {
  const typeLength = blob.length >= 4 ? blob.readUInt32BE(0) : 0;
  const type = blob.subarray(4, 4 + typeLength).toString("latin1");
  return { type, base64: blob.toString("base64"), fingerprint: sha256Fingerprint(blob) };
}

export function sha256Fingerprint(blob: Buffer): string {
  return `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`;
}

/** The name known_hosts files use: bare host on port 22, `[host]:port` otherwise. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** null when the value is neither an OpenSSH public-key line nor a `SHA256:` fingerprint. */
export function parsePinnedHostKey(value: string): { fingerprint: string } | { blob: Buffer } | null {
  const trimmed = value.trim();
  if (/^SHA256:[A-Za-z0-9+/]+=*$/.test(trimmed)) return { fingerprint: trimmed.replace(/=+$/, "") };
  const [type, base64] = trimmed.split(/\s+/);
  if (type === undefined || base64 === undefined) return null;
  const blob = decodeKeyBlob(base64);
  return blob !== null && describeKey(blob).type === type ? { blob } : null;
}

export function checkHostKey(blob: Buffer, source: HostKeySource, target: { host: string; port: number }): HostKeyVerdict {
  return source.kind === "pinned" ? checkPinned(blob, source.hostKey) : checkKnownHosts(blob, source, knownHostsName(target.host, target.port));
}

function checkPinned(blob: Buffer, hostKey: string): HostKeyVerdict {
  const offered = describeKey(blob);
  const pinned = parsePinnedHostKey(hostKey);
  if (pinned === null) {
    return {
      accepted: false,
      reason: "unknown",
      summary: `the pinned hostKey is neither an OpenSSH public-key line nor a SHA256 fingerprint; the host offered ${offered.type} ${offered.fingerprint}`,
      hint: `after checking the fingerprint on the host (ssh-keygen -lf /etc/ssh/ssh_host_${keyFileStem(offered.type)}_key.pub), set hostKey: "${offered.type} ${offered.base64}"`,
    };
  }
  const matches = "fingerprint" in pinned ? pinned.fingerprint === offered.fingerprint : pinned.blob.equals(blob);
  if (matches) return { accepted: true };
  const expected = "fingerprint" in pinned ? pinned.fingerprint : describeKey(pinned.blob).fingerprint;
  return {
    accepted: false,
    reason: "changed",
    summary: `the host offered ${offered.type} ${offered.fingerprint}, not the pinned hostKey (${expected}): possible man-in-the-middle, no command was run`,
    hint: `if the host was reinstalled and you checked the new fingerprint on the host (ssh-keygen -lf /etc/ssh/ssh_host_${keyFileStem(offered.type)}_key.pub), set hostKey: "${offered.type} ${offered.base64}"`,
  };
}

interface KnownHostsEntry {
  lineNumber: number;
  marker: "@revoked" | "@cert-authority" | null;
  patterns: string;
  type: string;
  blob: Buffer;
}

/**
 * The key types the host is expected to offer, in the order to ask for them (as OpenSSH does): the pinned key's
 * type, or the types known_hosts lists for the host. Empty = no preference (a fingerprint pin, an unknown host).
 */
export function expectedKeyTypes(source: HostKeySource, target: { host: string; port: number }): string[] {
  if (source.kind === "pinned") {
    const type = source.hostKey.trim().split(/\s+/)[0] ?? "";
    return type.startsWith("SHA256:") ? [] : [type];
  }
  const name = knownHostsName(target.host, target.port);
  const types = parseKnownHosts(source.text ?? "").filter((entry) => entry.marker === null && hostPatternsMatch(entry.patterns, name)).map((entry) => entry.type);
  return [...new Set(types)];
}

function checkKnownHosts(blob: Buffer, source: { path: string; text: string | null }, name: string): HostKeyVerdict {
  const offered = describeKey(blob);
  const entries = parseKnownHosts(source.text ?? "");
  // OpenSSH: a revoked key "must not ever be accepted", whatever host line it is on.
  const revoked = entries.find((entry) => entry.marker === "@revoked" && entry.blob.equals(blob));
  if (revoked !== undefined) {
    return {
      accepted: false,
      reason: "revoked",
      summary: `the host offered ${offered.type} ${offered.fingerprint}, which line ${revoked.lineNumber} of ${source.path} marks @revoked; no command was run`,
      hint: `the host must present a different host key (regenerate it on the host with ssh-keygen -A after removing the revoked one), then pin or add the new key`,
    };
  }
  const forHost = entries.filter((entry) => entry.marker === null && hostPatternsMatch(entry.patterns, name));
  if (forHost.some((entry) => entry.blob.equals(blob))) return { accepted: true };

  const addLine = `${name} ${offered.type} ${offered.base64}`;
  const checkOnHost = `ssh-keygen -lf /etc/ssh/ssh_host_${keyFileStem(offered.type)}_key.pub`;
  const sameType = forHost.filter((entry) => entry.type === offered.type);
  if (sameType.length > 0) {
    const lines = sameType.map((entry) => entry.lineNumber).join(", ");
    return {
      accepted: false,
      reason: "changed",
      summary:
        `the host offered ${offered.type} ${offered.fingerprint} (${offered.base64}), but line ${lines} of ${source.path} ` +
        `holds a different ${offered.type} key for ${name} (${describeKey(sameType[0]!.blob).fingerprint}): possible man-in-the-middle, no command was run`,
      hint: `if the host was reinstalled and you checked the new fingerprint on the host (${checkOnHost}), replace line ${lines} of ${source.path} with: ${addLine}  (or pin hostKey: "${offered.type} ${offered.base64}")`,
    };
  }
  const where = source.text === null ? `${source.path} does not exist` : `no ${offered.type} entry for ${name} in ${source.path}`;
  return {
    accepted: false,
    reason: "unknown",
    summary: `the host offered an unknown host key ${offered.type} ${offered.fingerprint} (${offered.base64}; ${where}); no command was run`,
    hint: `check the fingerprint on the host (${checkOnHost}), then pin it with hostKey: "${offered.type} ${offered.base64}" or add this line to ${source.path}: ${addLine}`,
  };
}

function parseKnownHosts(text: string): KnownHostsEntry[] {
  const entries: KnownHostsEntry[] = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    const fields = raw.trim().split(/\s+/);
    if (fields[0] === "" || fields[0]!.startsWith("#")) return;
    const marker = fields[0]!.startsWith("@") ? fields.shift()! : null;
    if (marker !== null && marker !== "@revoked" && marker !== "@cert-authority") return;
    const [patterns, type, base64] = fields;
    const blob = base64 === undefined ? null : decodeKeyBlob(base64);
    if (patterns === undefined || type === undefined || blob === null) return;
    entries.push({ lineNumber: index + 1, marker, patterns, type, blob });
  });
  return entries;
}

/** OpenSSH semantics: comma-separated patterns with `*`/`?`, `!` negates and wins; `|1|salt|hash` is hashed. */
function hostPatternsMatch(patterns: string, name: string): boolean {
  let matched = false;
  for (const pattern of patterns.split(",")) {
    const negated = pattern.startsWith("!");
    const body = negated ? pattern.slice(1) : pattern;
    if (!patternMatches(body, name)) continue;
    if (negated) return false;
    matched = true;
  }
  return matched;
}

function patternMatches(pattern: string, name: string): boolean {
  if (pattern.startsWith("|1|")) {
    const [salt, hash] = pattern.slice(3).split("|");
    if (salt === undefined || hash === undefined) return false;
    const expected = Buffer.from(hash, "base64");
    const actual = createHmac("sha1", Buffer.from(salt, "base64")).update(name).digest();
    return expected.length === actual.length && timingSafeEqual(expected, actual);
  }
  const regex = pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  return new RegExp(`^${regex}$`, "i").test(name);
}

function decodeKeyBlob(base64: string): Buffer | null {
  if (!/^[A-Za-z0-9+/]+=*$/.test(base64)) return null;
  const blob = Buffer.from(base64, "base64");
  return blob.length > 4 ? blob : null;
}

/** `ssh-ed25519` → `ed25519`, `ecdsa-sha2-nistp256` → `ecdsa`: the name of the host's key file. */
function keyFileStem(type: string): string {
  return type.replace(/^ssh-/, "").replace(/^ecdsa-.*/, "ecdsa");
}
