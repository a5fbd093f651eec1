/** `user@host:port`, IPv6 hosts in brackets: how hosts are named in errors, outputs and reports. */
export function hostLabel(conn: { user: string; host: string; port: number }): string {
  const host = conn.host.includes(":") ? `[${conn.host}]` : conn.host;
  return `${conn.user}@${host}:${conn.port}`;
}
