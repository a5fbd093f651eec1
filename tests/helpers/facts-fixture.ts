/** Facts fixtures (HostFacts as JSON) whose ExecStart script is one of the real scripts in tests/fixtures/scripts. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { HostFacts } from "../../provider/core/types";

const SCRIPTS = join(__dirname, "../../../tests/fixtures/scripts");
const REFERENCE = "@script:";

/** The text of a real dockerd-rootless.sh of tests/fixtures/scripts (`dockerd-rootless-26.1.5.sh`). */
export function realScript(name: string): string {
  return readFileSync(join(SCRIPTS, name), "utf8");
}

/** Reads a facts.json (no `hostIpv6` = none); an `execStart.script` of `@script:NAME` becomes that script's text. */
export function readFactsFixture(path: string): HostFacts {
  // Fixtures captured before the facts read the host's IPv6 network have none.
  const read = JSON.parse(readFileSync(path, "utf8")) as Omit<HostFacts, "hostIpv6"> & Partial<Pick<HostFacts, "hostIpv6">>;
  const facts: HostFacts = { ...read, hostIpv6: read.hostIpv6 ?? { addresses: [], defaultGateways: [] } };
  const script = facts.execStart.script;
  if (script?.startsWith(REFERENCE)) return { ...facts, execStart: { ...facts.execStart, script: realScript(script.slice(REFERENCE.length)) } };
  return facts;
}
