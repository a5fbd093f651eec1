#!/bin/sh
# Installed by pulumi-rootless-docker (pastaIpv6Compat). Logs go to stderr, i.e. the user journal.
# rdn:include lib/session.sh
# rdn:include lib/rootlesskit.sh
log() { echo "pasta-ipv6-compat: $*" >&2; }
# systemd passes the main PID (RootlessKit) to ExecStartPost=.
state_dir=$(rdn_state_dir "${MAINPID:-}")
tries=0
until child=$(rdn_child_pid "$state_dir") && rdn_in_netns "$state_dir" "$child" ip link show tap0 >/dev/null 2>&1; do
  tries=$((tries + 1))
  if [ "$tries" -ge 50 ]; then log "no RootlessKit namespace with tap0 under $state_dir after 10 s; leaving IPv6 unconfigured"; exit 0; fi
  sleep 0.2
done
host_dev=$(ip -6 route show default 2>/dev/null | awk '{ for (i = 1; i < NF; i++) if ($i == "dev") { print $(i + 1); exit } }')
address=$(ip -6 -o addr show ${host_dev:+dev "$host_dev"} scope global 2>/dev/null | awk '!/tentative|deprecated|dadfailed/ { sub(/\/.*/, "", $4); print $4; exit }')
if [ -z "$address" ]; then log "the host has no global IPv6 address${host_dev:+ on $host_dev}; leaving IPv6 unconfigured"; exit 0; fi
if rdn_in_netns "$state_dir" "$child" ip -6 addr replace "$address/64" dev tap0 nodad &&
  rdn_in_netns "$state_dir" "$child" ip -6 route replace default via fe80::1 dev tap0; then
  log "tap0: $address/64, default via fe80::1"
else
  log "could not configure tap0 in the namespace of pid $child"
fi
exit 0
