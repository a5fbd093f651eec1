/** Inputs and validated specs for lab hosts: the host key pinned, the lab's own target as the only verify target. */
import { readFileSync } from "node:fs";
import { validateNetworkArgs } from "../../provider/core/schema";
import type { NetworkSpec } from "../../provider/core/types";
import type { LabHost } from "../../lab/api";
import { BUSYBOX_IMAGE } from "../../lab/rootfs";

export function labInputs(host: LabHost, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  // A test's own verify keeps the lab's probe image: the default ("busybox") is not on lab hosts (no registry).
  const verify = overrides.verify;
  const withImage = verify !== null && typeof verify === "object" && !("image" in verify) ? { verify: { image: BUSYBOX_IMAGE, ...verify } } : {};
  return {
    connection: {
      host: host.address,
      port: host.port,
      user: host.user,
      privateKey: readFileSync(host.privateKeyPath, "utf8"),
      hostKey: host.hostPublicKey,
      dialErrorLimit: 3,
      perDialTimeout: 10,
    },
    verify: { targets: [{ address: host.target.ipv6, tcpPort: host.target.ipv6TcpPort }], timeoutSeconds: 30, image: BUSYBOX_IMAGE },
    ...overrides,
    ...withImage,
  };
}

export function labSpec(host: LabHost, overrides: Record<string, unknown> = {}): NetworkSpec {
  const validation = validateNetworkArgs(labInputs(host, overrides));
  if (!validation.ok) throw new Error(`bad test spec: ${JSON.stringify(validation.problems)}`);
  return validation.value;
}
