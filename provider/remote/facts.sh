#!/bin/sh
# Everything one SSH exec learns about a host, for the pure parser in provider/core/facts.ts.
# Parameters (a header of quoted assignments): unit, dropin_name, dropin_dirs (the names of the drop-in
# directories systemd searches for the unit, one a line: "docker.service.d", the type-level "service.d"…), and
# probe_image (the verification's container image, empty when none is used).
# Output lines are `RDN KEY FIELD…`; every field that carries host content is base64 (`-` = absent), so no
# file content or process argument can break the framing.
#
# The script forks as little as it can: every fork and exec costs host CPU, and in a fleet plan the hosts'
# CPU is what the plan waits for. Properties are cut out of `systemctl show` with parameter expansion instead
# of sed, /proc is read with `read` and `[ -O ]` (builtins), and `--version` runs only when a binary changed.
# rdn:include lib/session.sh
# rdn:include lib/rootlesskit.sh
: "${unit:?}" "${dropin_name:?}" "${dropin_dirs:=}" "${probe_image:=}"
nl='
'
# Text values are collected and encoded by one awk at the end (rdn_text_flush) instead of one base64
# process each; LC_ALL=C makes awk see bytes, so the result is base64 of the exact bytes of the value.
rdn_text_count=0
rdn_text() {
  rdn_text_count=$((rdn_text_count + 1))
  eval "RDN_TEXT_KEY_$rdn_text_count=\$1 RDN_TEXT_VALUE_$rdn_text_count=\$2"
  export "RDN_TEXT_KEY_$rdn_text_count" "RDN_TEXT_VALUE_$rdn_text_count"
}
rdn_text_flush() {
  RDN_TEXT_COUNT=$rdn_text_count LC_ALL=C awk '
function base64(bytes,    out, i, n, triple) {
  n = length(bytes)
  out = ""
  for (i = 1; i <= n; i += 3) {
    triple = code[substr(bytes, i, 1)] * 65536 + code[substr(bytes, i + 1, 1)] * 256 + code[substr(bytes, i + 2, 1)]
    out = out substr(alphabet, int(triple / 262144) + 1, 1) substr(alphabet, int(triple / 4096) % 64 + 1, 1)
    out = out (i + 1 <= n ? substr(alphabet, int(triple / 64) % 64 + 1, 1) : "=") (i + 2 <= n ? substr(alphabet, triple % 64 + 1, 1) : "=")
  }
  return out
}
BEGIN {
  alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
  for (i = 1; i < 256; i++) code[sprintf("%c", i)] = i
  count = ENVIRON["RDN_TEXT_COUNT"] + 0
  for (i = 1; i <= count; i++) print "RDN " ENVIRON["RDN_TEXT_KEY_" i] " " base64(ENVIRON["RDN_TEXT_VALUE_" i])
}'
}
rdn_file() { if [ -f "$2" ] && [ -r "$2" ]; then printf 'RDN %s %s\n' "$1" "$(rdn_b64 < "$2")"; else printf 'RDN %s -\n' "$1"; fi; }
# `RDN file KIND PATH CONTENT`: a file systemd may load. A symlink to /dev/null (how systemd masks a unit or
# drop-in) is sent as the content `null`, an unreadable file as `-`.
rdn_unit_file() {
  if [ -c "$2" ]; then
    printf 'RDN file %s %s null\n' "$1" "$(printf '%s' "$2" | rdn_b64)"
  elif [ -f "$2" ] && [ -r "$2" ]; then
    printf 'RDN file %s %s %s\n' "$1" "$(printf '%s' "$2" | rdn_b64)" "$(rdn_b64 < "$2")"
  elif [ -e "$2" ] || [ -L "$2" ]; then
    printf 'RDN file %s %s -\n' "$1" "$(printf '%s' "$2" | rdn_b64)"
  fi
}
rdn_yes() { if "$@" >/dev/null 2>&1; then echo yes; else echo no; fi; }
# The value of property $1 in $show (one Name=value a line), empty when absent; no fork, unlike sed.
rdn_show_property() {
  rdn_pv="$nl$show$nl"
  case $rdn_pv in
    *"$nl$1="*) rdn_pv=${rdn_pv#*"$nl$1="}; rdn_pv=${rdn_pv%%"$nl"*} ;;
    *) rdn_pv= ;;
  esac
}
echo 'RDN begin 1'
user=$(id -un)
HOME=${HOME:-$(getent passwd "$user" | cut -d: -f6)}
rdn_text user "$user"
rdn_text uid "$(id -u)"
rdn_text home "$HOME"
rdn_text xdg "$XDG_RUNTIME_DIR"
if [ -e "/var/lib/systemd/linger/$user" ]; then echo 'RDN linger yes'; else echo 'RDN linger no'; fi
rdn_file pinggrouprange /proc/sys/net/ipv4/ping_group_range
# The host's own global IPv6 addresses and its IPv6 default gateways, which a verification target must not be
# (pasta gives the namespace the host's addresses, and maps the gateway to the host). Read from /proc/net with
# `read`, no fork: if_inet6 is ADDRESS IFINDEX PREFIXLEN SCOPE FLAGS NAME (scope 00 = global); ipv6_route is DEST
# DESTLEN SRC SRCLEN NEXTHOP METRIC REFCNT USE FLAGS NAME, in hex, a gateway route with RTF_GATEWAY (0x2) set.
host_addresses=
if [ -r /proc/net/if_inet6 ]; then
  while read -r rdn_a _ _ rdn_scope _ _; do
    if [ "$rdn_scope" = 00 ]; then host_addresses="$host_addresses $rdn_a"; fi
  done < /proc/net/if_inet6
fi
host_gateways=
if [ -r /proc/net/ipv6_route ]; then
  while read -r rdn_dest rdn_len _ _ rdn_hop _ _ _ rdn_flags _; do
    [ "$rdn_dest$rdn_len" = 0000000000000000000000000000000000 ] || continue
    case $rdn_flags in *[2367abef]) host_gateways="$host_gateways $rdn_hop" ;; esac
  done < /proc/net/ipv6_route
fi
rdn_text hostaddresses "${host_addresses# }"
rdn_text hostgateways "${host_gateways# }"
# show fails only when the user manager does not answer (or refuses the unit name): only then is
# show-environment needed to tell the two apart.
if show=$(systemctl --user show "$unit" -p LoadState -p MainPID -p ActiveState -p SubState -p ExecMainPID -p InvocationID \
  -p NeedDaemonReload -p Environment -p DropInPaths -p FragmentPath -p ExecMainStartTimestamp -p ExecStart 2>/dev/null); then
  echo 'RDN usermanager yes'
  # The manager's own search path and environment: what it will load at the next reload, and what every
  # unit inherits. Only our variables of the environment leave the host (it may hold anyone's secrets).
  unit_path=$(systemctl --user show -p UnitPath --value 2>/dev/null)
  manager_env=$(systemctl --user show-environment 2>/dev/null | grep '^DOCKERD_ROOTLESS_')
else
  show='' unit_path='' manager_env=''
  echo "RDN usermanager $(rdn_yes systemctl --user show-environment)"
fi
rdn_text show "$show"
rdn_text managerenv "$manager_env"
dropin="$HOME/.config/systemd/user/$unit.d/$dropin_name"
rdn_text dropinpath "$dropin"
rdn_file dropin "$dropin"
# Without an answer from the manager, its search path as src/basic/path-lookup.c (user_dirs) builds it from
# the XDG variables, highest priority first.
if [ -z "$unit_path" ]; then
  config_home=${XDG_CONFIG_HOME:-$HOME/.config}
  data_home=${XDG_DATA_HOME:-$HOME/.local/share}
  runtime=$XDG_RUNTIME_DIR/systemd
  unit_path="$config_home/systemd/user.control $runtime/user.control $runtime/transient $runtime/generator.early $config_home/systemd/user"
  rdn_ifs=$IFS
  IFS=:
  for dir in ${XDG_CONFIG_DIRS:-/etc/xdg}; do unit_path="$unit_path $dir/systemd/user"; done
  unit_path="$unit_path /etc/systemd/user $runtime/user /run/systemd/user $runtime/generator $data_home/systemd/user"
  for dir in ${XDG_DATA_DIRS:-/usr/local/share:/usr/share}; do unit_path="$unit_path $dir/systemd/user"; done
  IFS=$rdn_ifs
  unit_path="$unit_path /usr/local/lib/systemd/user /usr/local/share/systemd/user /usr/lib/systemd/user /usr/share/systemd/user $runtime/generator.late"
  echo 'RDN unitpathguessed yes'
fi
rdn_text unitpath "$unit_path"
# Every unit file and drop-in on disk, in search-path order: the core applies systemd's masking (the same
# file name in a higher-priority directory wins) and ordering. systemctl prints a list property as shell
# words (shell_maybe_quote: "$", "`", "\\" and '"' escaped inside double quotes), so eval with globbing off
# splits it exactly and expands nothing. The subshell keeps an unexpected parse error from ending the script.
unit_files=$(
  set -f
  eval "set -- $unit_path"
  set +f
  rdn_ifs=$IFS
  for dir in "$@"; do
    rdn_unit_file fragment "$dir/$unit"
    # One name a line, split on newlines only (unit names hold no glob characters).
    IFS=$nl
    # shellcheck disable=SC2086
    for sub in $dropin_dirs; do
      IFS=$rdn_ifs
      for path in "$dir/$sub"/*.conf; do rdn_unit_file dropin "$path"; done
    done
    IFS=$rdn_ifs
  done
) 2>/dev/null
[ -z "$unit_files" ] || printf '%s\n' "$unit_files"
# EnvironmentFile= lines of those files (their variables beat Environment=): the paths with the specifiers
# the script can expand (%h %u %U %t %%) and globs, read so that the core can tell which of them decides.
# Only lines of our variables leave the host (with the continuation lines that follow them): such files
# often hold secrets.
env_files=$(printf '%s\n' "$unit_files" | while read -r marker key _kind _path content; do
  if [ "$marker" != RDN ] || [ "$key" != file ] || [ "$content" = - ] || [ "$content" = null ]; then continue; fi
  printf '%s' "$content" | base64 -d 2>/dev/null | tr -d '\r'
  echo
done | RDN_UID=$(id -u) awk '
  function expand(text,    out, c) {
    out = ""
    while (match(text, /%./)) {
      c = substr(text, RSTART + 1, 1)
      if (c == "h") out = out substr(text, 1, RSTART - 1) ENVIRON["HOME"]
      else if (c == "u") out = out substr(text, 1, RSTART - 1) ENVIRON["USER"]
      else if (c == "U") out = out substr(text, 1, RSTART - 1) ENVIRON["RDN_UID"]
      else if (c == "t") out = out substr(text, 1, RSTART - 1) ENVIRON["XDG_RUNTIME_DIR"]
      else if (c == "%") out = out substr(text, 1, RSTART - 1) "%"
      else return ""
      text = substr(text, RSTART + 2)
    }
    return out text
  }
  /^[ \t]*EnvironmentFile[ \t]*=/ {
    value = $0
    sub(/^[ \t]*EnvironmentFile[ \t]*=[ \t]*-?/, "", value)
    sub(/[ \t]+$/, "", value)
    value = expand(value)
    if (value ~ /^\//) print value
  }')
if [ -n "$env_files" ]; then
  while IFS= read -r pattern; do
    # Unquoted on purpose: EnvironmentFile= takes a glob.
    # shellcheck disable=SC2086
    for path in $pattern; do
      if [ -f "$path" ] && [ -r "$path" ]; then
        echo "RDN envfile $(printf '%s' "$path" | rdn_b64) $(awk '{ if (!continued) keep = /DOCKERD_ROOTLESS_/; if (keep) print; continued = /\\$/ }' "$path" | rdn_b64)"
      else
        echo "RDN envfile $(printf '%s' "$path" | rdn_b64) -"
      fi
    done
  done <<EOF
$env_files
EOF
fi
# environment.d files that set our variables: what the manager environment comes from (for the cause).
for path in "${XDG_CONFIG_HOME:-$HOME/.config}"/environment.d/*.conf /etc/environment.d/*.conf /run/environment.d/*.conf /usr/local/lib/environment.d/*.conf /usr/lib/environment.d/*.conf; do
  if [ ! -f "$path" ] || [ ! -r "$path" ]; then continue; fi
  lines=$(grep 'DOCKERD_ROOTLESS_' "$path" 2>/dev/null) || continue
  echo "RDN environmentd $(printf '%s' "$path" | rdn_b64) $(printf '%s\n' "$lines" | rdn_b64)"
done
# The script the unit's ExecStart runs (path= of the first command): the core derives from its text which
# variables it reads and what it does with them.
rdn_show_property ExecStart
case $rdn_pv in
  *"path="*) exec_path=${rdn_pv#*path=}; exec_path=${exec_path%% *} ;;
  *) exec_path= ;;
esac
rdn_text execpath "$exec_path"
if [ -n "$exec_path" ] && [ -f "$exec_path" ] && [ -r "$exec_path" ]; then
  case $(head -c 2 "$exec_path" 2>/dev/null) in '#!') rdn_file execscript "$exec_path" ;; esac
fi
# MainPID, not ExecMainPID: the latter keeps the PID of a process that has already exited.
rdn_show_property MainPID
main_pid=$rdn_pv
case $main_pid in ''|0|*[!0-9]*) main_pid= ;; esac
echo "RDN mainpid ${main_pid:--}"
if [ -n "$main_pid" ]; then
  rdn_file maincmdline "/proc/$main_pid/cmdline"
  # Only the DOCKERD_ROOTLESS_* entries leave the host; newlines inside values survive as \001.
  if [ -r "/proc/$main_pid/environ" ]; then
    echo "RDN mainenv $(tr '\n\0' '\001\n' < "/proc/$main_pid/environ" | grep '^DOCKERD_ROOTLESS_' | tr '\n\001' '\0\n' | rdn_b64)"
  fi
  state_dir=$(rdn_state_dir "$main_pid")
  rdn_text statedir "$state_dir"
  echo "RDN childpid $(rdn_child_pid "$state_dir" || echo -)"
fi
# The user's own network helpers; test -O and read are builtins, so scanning /proc forks only on a match.
# The PPid is the field after the state in /proc/PID/stat, after the last ") " (comm may hold anything).
for dir in /proc/[0-9]*; do
  [ -O "$dir" ] || continue
  read -r comm < "$dir/comm" 2>/dev/null || continue
  case $comm in
    rootlesskit|docker-rootless*|pasta|pasta.*|passt|passt.*|slirp4netns)
      ppid=
      if read -r stat < "$dir/stat" 2>/dev/null; then stat=${stat##*") "}; ppid=${stat#* }; ppid=${ppid%% *}; fi
      printf 'RDN proc %s %s ' "${dir#/proc/}" "${ppid:-0}"
      printf '%s' "$comm" | rdn_b64
      printf ' '
      rdn_b64 < "$dir/cmdline" 2>/dev/null
      echo ;;
  esac
done
path_rootlesskit=$(command -v rootlesskit 2>/dev/null)
path_pasta=$(command -v pasta 2>/dev/null)
path_slirp4netns=$(command -v slirp4netns 2>/dev/null)
path_dockerd=$(command -v dockerd 2>/dev/null)
path_vpnkit=$(command -v vpnkit 2>/dev/null)
path_lxc_user_nic=$(command -v lxc-user-nic 2>/dev/null)
path_nsenter=$(command -v nsenter 2>/dev/null)
rdn_text bin.rootlesskit "$path_rootlesskit"
rdn_text bin.pasta "$path_pasta"
rdn_text bin.slirp4netns "$path_slirp4netns"
rdn_text bin.vpnkit "$path_vpnkit"
rdn_text bin.lxc-user-nic "$path_lxc_user_nic"
rdn_text bin.nsenter "$path_nsenter"
# pasta prints its version only to a terminal: retry under script(1) (util-linux, always installed).
rdn_run_version() {
  [ -n "$2" ] || return 0
  rdn_v=$("$1" --version 2>/dev/null </dev/null | head -n 1)
  [ -n "$rdn_v" ] || rdn_v=$(script -q -c "$1 --version" /dev/null 2>/dev/null </dev/null | head -n 1 | tr -d '\r')
  printf '%s\n' "$rdn_v"
}
# Starting dockerd, RootlessKit and pasta just to print a version is most of the script's CPU time, and
# a version only changes with the binary. So the four lines are kept in $XDG_RUNTIME_DIR (a tmpfs of
# this user, gone at reboot) under a key of each binary's path, device, inode, size, and mtime and ctime
# in nanoseconds: any install, replacement or rewrite changes the key, and the versions are read afresh.
# Without such a key (no runtime dir of ours, stat failing) nothing is cached.
versions_cache="$XDG_RUNTIME_DIR/pulumi-rootless-docker/versions"
versions_key=
if [ -d "$XDG_RUNTIME_DIR" ] && [ -O "$XDG_RUNTIME_DIR" ]; then
  set --
  for path in "$path_rootlesskit" "$path_pasta" "$path_slirp4netns" "$path_dockerd"; do [ -z "$path" ] || set -- "$@" "$path"; done
  if [ $# -gt 0 ] && stat_key=$(stat -L --printf '%d:%i:%s:%.9Y:%.9Z;' -- "$@" 2>/dev/null); then
    versions_key="rootlesskit=$path_rootlesskit pasta=$path_pasta slirp4netns=$path_slirp4netns dockerd=$path_dockerd $stat_key"
  fi
fi
if [ -n "$versions_key" ] && [ -f "$versions_cache" ] \
  && { IFS= read -r cached_key && IFS= read -r version_rootlesskit && IFS= read -r version_pasta && IFS= read -r version_slirp4netns && IFS= read -r version_dockerd; } < "$versions_cache" \
  && [ "$cached_key" = "$versions_key" ]; then
  :
else
  version_rootlesskit=$(rdn_run_version rootlesskit "$path_rootlesskit")
  version_pasta=$(rdn_run_version pasta "$path_pasta")
  version_slirp4netns=$(rdn_run_version slirp4netns "$path_slirp4netns")
  version_dockerd=$(rdn_run_version dockerd "$path_dockerd")
  if [ -n "$versions_key" ] && mkdir -p "${versions_cache%/*}" 2>/dev/null; then
    if ! { printf '%s\n' "$versions_key" "$version_rootlesskit" "$version_pasta" "$version_slirp4netns" "$version_dockerd" > "$versions_cache.$$" \
      && mv -f "$versions_cache.$$" "$versions_cache"; } 2>/dev/null; then
      rm -f "$versions_cache.$$"
    fi
  fi
fi
rdn_text version.rootlesskit "$version_rootlesskit"
rdn_text version.pasta "$version_pasta"
rdn_text version.slirp4netns "$version_slirp4netns"
rdn_text version.dockerd "$version_dockerd"
rdn_text daemonjsonpath "$HOME/.config/docker/daemon.json"
rdn_file daemonjson "$HOME/.config/docker/daemon.json"
rdn_text compatpath "$HOME/.local/lib/pulumi-rootless-docker/pasta-ipv6-compat.sh"
rdn_file compat "$HOME/.local/lib/pulumi-rootless-docker/pasta-ipv6-compat.sh"
# The verification's container image (probe_image, set only when a bridge container will be probed): yes, no
# (the daemon answered: no such image) or unknown (no docker command, no daemon to ask).
if [ -n "$probe_image" ]; then
  if ! command -v docker >/dev/null 2>&1; then probe_answer=unknown
  elif probe_out=$(DOCKER_HOST="unix://$XDG_RUNTIME_DIR/docker.sock" docker image inspect --format . "$probe_image" 2>&1); then probe_answer=yes
  else case $probe_out in *"No such image"*|*"no such image"*) probe_answer=no ;; *) probe_answer=unknown ;; esac
  fi
  rdn_text probeimage "$probe_answer"
fi
rdn_text_flush
echo 'RDN end'
