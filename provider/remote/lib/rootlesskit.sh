# Locate the running RootlessKit of a main PID and enter its network namespace. The state dir is the one
# RootlessKit was started with (--state-dir), else the one whose lock it holds open (Docker < 25 passes no
# --state-dir: RootlessKit 1.x then makes /tmp/rootlesskitNNN), else the variable dockerd-rootless.sh reads,
# else its default.
rdn_b64() { base64 -w 0; }
rdn_state_dir() {
  rdn_sd=
  if [ -r "/proc/$1/cmdline" ]; then
    rdn_sd=$(tr '\0' '\n' < "/proc/$1/cmdline" | awk 'p { print; exit } /^--state-dir=/ { sub(/^--state-dir=/, ""); print; exit } $0 == "--state-dir" { p = 1 }')
  fi
  if [ -z "$rdn_sd" ] && [ -d "/proc/$1/fd" ]; then
    for rdn_fd in "/proc/$1/fd"/*; do
      rdn_lock=$(readlink "$rdn_fd" 2>/dev/null) || continue
      case $rdn_lock in
        */lock) if [ -e "${rdn_lock%/lock}/child_pid" ]; then rdn_sd=${rdn_lock%/lock}; break; fi ;;
      esac
    done
  fi
  if [ -z "$rdn_sd" ] && [ -r "/proc/$1/environ" ]; then
    rdn_sd=$(tr '\0' '\n' < "/proc/$1/environ" | sed -n 's/^DOCKERD_ROOTLESS_ROOTLESSKIT_STATE_DIR=//p' | head -n 1)
  fi
  printf '%s\n' "${rdn_sd:-$XDG_RUNTIME_DIR/dockerd-rootless}"
}
rdn_child_pid() {
  rdn_cp=$(cat "$1/child_pid" 2>/dev/null)
  case $rdn_cp in ''|*[!0-9]*) return 1 ;; esac
  [ -d "/proc/$rdn_cp" ] || return 1
  printf '%s\n' "$rdn_cp"
}
# With --detach-netns the namespace is bind-mounted on $STATE_DIR/netns inside the child's mount namespace only:
# outside it that path is the empty file under the mount (nsenter: "Invalid argument"), so go through the child's root.
rdn_in_netns() {
  rdn_nsd=$1 rdn_ncp=$2
  shift 2
  if [ -e "$rdn_nsd/netns" ]; then
    nsenter -U --preserve-credentials -t "$rdn_ncp" --net="/proc/$rdn_ncp/root$rdn_nsd/netns" "$@"
  else
    nsenter -U --preserve-credentials -n -t "$rdn_ncp" "$@"
  fi
}
