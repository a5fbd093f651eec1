/**
 * Our `connection` input mirrors `remote.ConnectionArgs` of @pulumi/command (the release in devDependencies),
 * so a program can hand the same object to a `remote.Command` and to our resources. The type checks below
 * fail the build (and so `npm test`) when a release of @pulumi/command adds, drops or retypes a field; the
 * runtime test compares the defaults its SDK applies with ours.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { types } from "@pulumi/command";
import { validateNetworkArgs } from "../../provider/core/schema";
import type { ConnectionArgs, ProxyConnectionArgs } from "../../provider";

type CommandConnection = types.input.remote.ConnectionArgs;
type CommandProxy = types.input.remote.ProxyConnectionArgs;

/** What we take beyond @pulumi/command: its remote.Command does not check host keys against known_hosts. */
type OurExtras = "knownHostsPath" | "dangerouslySkipHostKeyVerification";

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const exactly = <T extends true>(_proof?: T) => undefined;

// Same field names: theirs plus our two, nothing else.
exactly<Equal<keyof ConnectionArgs, keyof CommandConnection | OurExtras>>();
exactly<Equal<keyof ProxyConnectionArgs, keyof CommandProxy | OurExtras>>();
// Same types and optionality for every field of theirs except the nested proxy (ours has our extras too).
exactly<Equal<Omit<ConnectionArgs, OurExtras | "proxy">, Omit<CommandConnection, "proxy">>>();
exactly<Equal<Omit<ProxyConnectionArgs, OurExtras>, CommandProxy>>();

test("a connection written for remote.Command is ours as it is, with the same defaults (port 22, 10 dial attempts, 15 s per dial)", () => {
  const theirs: CommandConnection = types.input.remote.connectionArgsProvideDefaults({ host: "192.0.2.1", user: "dev", password: "secret" });
  // Both assignments compile only while each side accepts the other's fields.
  const connection: ConnectionArgs = theirs;
  const back: CommandConnection = { host: "192.0.2.1", user: "dev" } satisfies Omit<ConnectionArgs, OurExtras>;
  assert.equal(back.host, connection.host);
  const validation = validateNetworkArgs({ connection: { host: "192.0.2.1", user: "dev", password: "secret" }, networkDriver: "slirp4netns" });
  assert.ok(validation.ok, JSON.stringify(validation.ok ? null : validation.problems));
  const ours = validation.value.connection;
  assert.deepEqual([ours.port, ours.dialErrorLimit, ours.perDialTimeout], [theirs.port, theirs.dialErrorLimit, theirs.perDialTimeout]);
});
