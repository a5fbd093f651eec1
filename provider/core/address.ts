/**
 * IPv6 addresses as bytes, and the verification targets that prove nothing: an answer from them says nothing about
 * whether the host's network carries IPv6. Pure (node:net is not for the core).
 */
import type { NetworkDriver } from "./types";

/** The 16 bytes of an IPv6 address (`::` and a dotted IPv4 tail allowed, no zone, no brackets), or null. */
export function ipv6Bytes(address: string): number[] | null {
  let text = address.toLowerCase();
  const dotted = /^(.*:)(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  let tail: number[] = [];
  if (dotted) {
    tail = dotted.slice(2).map(Number);
    if (tail.some((octet, index) => octet > 255 || String(octet) !== dotted[index + 2])) return null;
    // A trailing `:` before the IPv4 part belongs to the groups, except in `::1.2.3.4`.
    text = dotted[1].endsWith("::") ? dotted[1] : dotted[1].slice(0, -1);
  }
  const groupCount = 8 - tail.length / 2;
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const parse = (part: string) => (part === "" ? [] : part.split(":"));
  const head = parse(halves[0]);
  const rest = halves.length === 2 ? parse(halves[1]) : [];
  const missing = groupCount - head.length - rest.length;
  if ((halves.length === 1 && missing !== 0) || (halves.length === 2 && missing < 1)) return null;
  const groups = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill("0"), ...rest];
  if (!groups.every((group) => /^[0-9a-f]{1,4}$/.test(group))) return null;
  return [...groups.flatMap((group) => [parseInt(group, 16) >> 8, parseInt(group, 16) & 0xff]), ...tail];
}

/** The address in RFC 5952 form (lowercase, longest zero run as `::`): how addresses are compared and shown. */
export function canonicalIpv6(address: string): string | null {
  const bytes = ipv6Bytes(address);
  if (bytes === null) return null;
  const groups = Array.from({ length: 8 }, (_, index) => (bytes[2 * index] << 8) | bytes[2 * index + 1]);
  let best = { start: -1, length: 0 };
  for (let start = 0; start < 8; start++) {
    let length = 0;
    while (start + length < 8 && groups[start + length] === 0) length++;
    if (length > best.length && length >= 2) best = { start, length };
  }
  const hex = groups.map((group) => group.toString(16));
  if (best.start < 0) return hex.join(":");
  return `${hex.slice(0, best.start).join(":")}::${hex.slice(best.start + best.length).join(":")}`;
}

/** The address lies inside `prefix/length`. */
export function inPrefix(address: number[], prefix: string, length: number): boolean {
  const base = ipv6Bytes(prefix);
  if (base === null) throw new Error(`invalid prefix ${prefix}`);
  for (let bit = 0; bit < length; bit++) {
    const mask = 0x80 >> bit % 8;
    if ((address[bit >> 3] & mask) !== (base[bit >> 3] & mask)) return false;
  }
  return true;
}

interface RefusedRange {
  prefix: string;
  length: number;
  /** Only under these drivers (their own addresses in the namespace). */
  drivers?: readonly NetworkDriver[];
  /** Why an answer from such an address proves nothing. */
  why: string;
}

// Most specific first: ::1 and :: also lie in the IPv4-compatible ::/96.
const REFUSED: readonly RefusedRange[] = [
  { prefix: "::1", length: 128, why: "is the loopback address: the namespace answers it itself, over no network" },
  { prefix: "::", length: 128, why: "is the unspecified address: it names no host (connecting to it reaches the namespace itself)" },
  { prefix: "::ffff:0:0", length: 96, why: "is an IPv4-mapped address (::ffff:0:0/96): it is IPv4, so it proves nothing about IPv6" },
  { prefix: "::", length: 96, why: "is a deprecated IPv4-compatible address (::/96, RFC 4291): no network routes it" },
  { prefix: "100::", length: 64, why: "is in the discard-only prefix 100::/64 (RFC 6666): packets to it are dropped by design" },
  { prefix: "2001:db8::", length: 32, why: "is in the documentation prefix 2001:db8::/32 (RFC 3849): it exists only in examples" },
  { prefix: "3fff::", length: 20, why: "is in the documentation prefix 3fff::/20 (RFC 9637): it exists only in examples" },
  { prefix: "fe80::", length: 10, why: "is link-local (fe80::/10): it names a neighbour on one link, never the network beyond it, and needs a zone" },
  { prefix: "ff00::", length: 8, why: "is multicast (ff00::/8): it names a group, not a host, and TCP cannot connect to it" },
  // The namespace's own prefix: slirp4netns(1) has IPv6 CIDR fd00::/64, gateway/host fd00::2, DNS fd00::3 and gives
  // the namespace a random address of it; RootlessKit 3.3's pasta driver (pkg/network/pasta, not 3.1's) starts pasta
  // with --address=fd00::100 --gateway=fd00::2 --dns-forward=fd00::3. The driver answers them itself (the gateway is
  // the host, the DNS address the host's resolver), without the host's network.
  {
    prefix: "fd00::",
    length: 64,
    drivers: ["slirp4netns", "pasta"],
    why: "is in fd00::/64, the namespace's own prefix (gateway fd00::2, DNS fd00::3, the namespace's own address: slirp4netns, and pasta as RootlessKit 3.3 starts it): the driver answers it itself, without the host's network",
  },
];

/** What to write instead, in every refusal (and for a copied placeholder). */
export function targetFix(property: string): string {
  return `set ${property} to an IPv6 address of your own network that every host must reach (your resolver, registry or proxy), e.g. a ULA fd12:3456:789a::53 or a global address`;
}

/** Placeholders the README and examples use where the user must write their own target. */
const PLACEHOLDER = /^(set[-_ ]?me|change[-_ ]?me|todo|xxx+|<[^>]*>)$/i;

export function isPlaceholderTarget(address: string): boolean {
  return PLACEHOLDER.test(address.trim());
}

/**
 * Why `address` proves nothing as a verification target under `driver`, or null when it may. The address must be
 * valid IPv6 (the schema checks that first); a driver not known yet checks only what holds under every driver.
 */
export function refusedTarget(address: string, driver: NetworkDriver | undefined): string | null {
  const bytes = ipv6Bytes(address);
  if (bytes === null) return null;
  const range = REFUSED.find((candidate) => (candidate.drivers === undefined || (driver !== undefined && candidate.drivers.includes(driver))) && inPrefix(bytes, candidate.prefix, candidate.length));
  return range ? `${address} ${range.why}` : null;
}

/** Two spellings of the same IPv6 address (`fd12::0:53` and `FD12::53`). */
export function sameIpv6(a: string, b: string): boolean {
  const left = canonicalIpv6(a);
  return left !== null && left === canonicalIpv6(b);
}
