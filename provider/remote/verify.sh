#!/bin/sh
# The IPv6 check of one host, for the pure parser in provider/core/verify.ts: the probe (lib/probe.sh) runs inside
# the RootlessKit network namespace and, with RDN_CONTAINER=1, inside a bridge container.
# Parameters (a header of quoted assignments):
#   RDN_TARGETS    the targets, space-separated, each ADDRESS,PORT|-,1|0 (TCP port or none, ICMP or not)
#   RDN_SECONDS    how long each place keeps retrying
#   RDN_UNIT       the user unit of rootless Docker
#   RDN_IMAGE      the bridge container's image (never pulled)
#   RDN_CONTAINER  1 = also probe from a bridge container
# Output lines are `RDN KEY FIELD…`; text from the host travels base64.
# rdn:include lib/session.sh
# rdn:include lib/rootlesskit.sh
: "${RDN_TARGETS:?}" "${RDN_SECONDS:?}" "${RDN_UNIT:?}" "${RDN_IMAGE:?}" "${RDN_CONTAINER:=0}"
# The probe's text, to hand to sh inside the namespace and the container.
probe=$(cat <<'RDN_PROBE'
# rdn:include lib/probe.sh
RDN_PROBE
)
echo 'RDN begin 1'
echo "RDN checkedat $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "RDN groups $(id -G)"
# What `reachable` will speak for.
if [ "$RDN_CONTAINER" = 1 ]; then echo 'RDN covers namespace+container'; else echo 'RDN covers namespace'; fi
# The targets travel in the output too, so the parser needs nothing but the output.
for target in $RDN_TARGETS; do
  rest=${target#*,}
  echo "RDN target ${target%%,*} ${rest%%,*} ${rest#*,}"
done
echo 'RDN path namespace'
main_pid=$(systemctl --user show -p MainPID --value "$RDN_UNIT" 2>/dev/null)
case $main_pid in ''|0|*[!0-9]*) main_pid= ;; esac
state_dir=$(rdn_state_dir "$main_pid")
if [ -z "$main_pid" ]; then
  echo "RDN nodaemon $(printf 'the unit has no main process' | rdn_b64)"
elif ! child=$(rdn_child_pid "$state_dir"); then
  echo "RDN nodaemon $(printf 'no live child_pid in %s' "$state_dir" | rdn_b64)"
else
  rdn_in_netns "$state_dir" "$child" sh -c "$probe" probe "$RDN_SECONDS" "$RDN_TARGETS"
fi
if [ "$RDN_CONTAINER" = 1 ]; then
  echo 'RDN path container'
  if ! command -v docker >/dev/null 2>&1; then
    echo "RDN pathfailed $(printf 'no docker command on PATH' | rdn_b64)"
  elif ! DOCKER_HOST="unix://$XDG_RUNTIME_DIR/docker.sock" docker image inspect --format . "$RDN_IMAGE" >/dev/null 2>&1; then
    echo "RDN noimage $(printf '%s' "$RDN_IMAGE" | rdn_b64)"
  else
    err=$(mktemp)
    DOCKER_HOST="unix://$XDG_RUNTIME_DIR/docker.sock" docker run --rm --pull=never "$RDN_IMAGE" sh -c "$probe" probe "$RDN_SECONDS" "$RDN_TARGETS" 2>"$err"
    rc=$?
    [ "$rc" = 0 ] || echo "RDN pathfailed $(printf 'docker run exited with %s: %s' "$rc" "$(tail -n 3 "$err")" | rdn_b64)"
    rm -f "$err"
  fi
fi
echo 'RDN end'
