import { NETWORK_DRIVERS, PORT_DRIVERS, type HostFacts, type NetworkDriver, type PortDriver } from "./types";

/** What the running daemon has in force, read from the RootlessKit command line (the only full truth: the API has no IPv6 flag or MTU). */
export interface RunningNetwork {
  networkDriver: NetworkDriver | null;
  portDriver: PortDriver | null;
  ipv6: boolean;
  mtu: number | null;
}

export function runningNetwork(facts: HostFacts): RunningNetwork {
  // RootlessKit's own flags end where the child command begins (dockerd-rootless.sh passes every flag as
  // --name=value): dockerd's arguments after it, such as its own --ipv6, are not RootlessKit's.
  const full = facts.running.rootlesskitArgv ?? [];
  const child = full.findIndex((arg, index) => index > 0 && !arg.startsWith("-"));
  const argv = child < 0 ? full : full.slice(0, child);
  const flag = (name: string): string | undefined => {
    const index = argv.findIndex((arg) => arg === `--${name}` || arg.startsWith(`--${name}=`));
    if (index < 0) return undefined;
    const arg = argv[index];
    return arg.includes("=") ? arg.slice(arg.indexOf("=") + 1) : argv[index + 1];
  };
  const net = flag("net");
  const port = flag("port-driver");
  const mtu = Number(flag("mtu"));
  return {
    networkDriver: (NETWORK_DRIVERS as readonly string[]).includes(net ?? "") ? (net as NetworkDriver) : null,
    portDriver: (PORT_DRIVERS as readonly string[]).includes(port ?? "") ? (port as PortDriver) : null,
    ipv6: argv.includes("--ipv6"),
    mtu: Number.isInteger(mtu) && mtu > 0 ? mtu : null,
  };
}
