# Shared by apply.sh and rollback.sh: the host lock, compare-and-swap, backups, atomic writes, daemon-reload,
# restart with a bounded wait, and rollback. Output markers (parsed by provider/core/scripts.ts):
#   RDN step NAME STATUS [b64 detail], RDN journal b64, RDN holder b64, RDN changed b64, RDN facts b64,
#   and one final RDN result NAME. Exit codes are APPLY_EXIT of scripts.ts.
# Parameters read: rdn_unit rdn_lock_wait rdn_lock_holder rdn_backup_dir rdn_active_timeout rdn_expected
# and optionally rdn_lock_path.
rdn_step() { printf 'RDN step %s %s %s\n' "$1" "$2" "$(printf '%s' "${3:-}" | rdn_b64)"; }
rdn_finish() { printf 'RDN result %s\n' "$1"; exit "$2"; }
# A path as given by the engine: absolute, or relative to the remote user's home.
rdn_expand() {
  case $1 in
    /*) printf '%s\n' "$1" ;;
    *) printf '%s\n' "$HOME/$1" ;;
  esac
}
rdn_unb64() { printf '%s' "$1" | base64 -d; }
rdn_lock() {
  if [ -n "${rdn_lock_path:-}" ]; then rdn_lock_path=$(rdn_expand "$rdn_lock_path"); else rdn_lock_path=$XDG_RUNTIME_DIR/pulumi-rootless-docker/apply.lock; fi
  mkdir -p "$(dirname "$rdn_lock_path")" || { rdn_step lock failed "cannot create $(dirname "$rdn_lock_path")"; rdn_finish failed 1; }
  exec 9>>"$rdn_lock_path"
  if ! flock -w "$rdn_lock_wait" 9; then
    printf 'RDN holder %s\n' "$(rdn_b64 < "$rdn_lock_path.holder" 2>/dev/null)"
    rdn_step lock failed "held by another apply for more than $rdn_lock_wait s"
    rdn_finish lock-timeout 75
  fi
  printf '%s (pid %s, since %s)\n' "$rdn_lock_holder" "$$" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$rdn_lock_path.holder"
  rdn_step lock ok
}
rdn_sha() { if [ -e "$1" ]; then sha256sum < "$1" | cut -d ' ' -f 1; else echo absent; fi; }
# Compare-and-swap: every line of rdn_expected is "BASE64-PATH SHA256|absent", as the caller saw the file;
# any difference stops here, changing nothing.
rdn_compare() {
  while read -r rdn_p64 rdn_want <&3; do
    [ -n "$rdn_p64" ] || continue
    rdn_path=$(rdn_expand "$(rdn_unb64 "$rdn_p64")")
    if [ "$(rdn_sha "$rdn_path")" != "$rdn_want" ]; then
      printf 'RDN changed %s\n' "$(printf '%s' "$rdn_path" | rdn_b64)"
      rdn_step compare failed "$rdn_path"
      rdn_finish changed-since-plan 76
    fi
  done 3<<RDN_EXPECTED
$rdn_expected
RDN_EXPECTED
  rdn_step compare ok
}
rdn_put_file() {
  rdn_dir=$(dirname "$1")
  mkdir -p "$rdn_dir" || return 1
  rdn_tmp="$rdn_dir/.pulumi-rootless-docker.$$.tmp"
  if cat > "$rdn_tmp" && chmod "$2" "$rdn_tmp" && mv -f "$rdn_tmp" "$1"; then return 0; fi
  rm -f "$rdn_tmp"
  return 1
}
rdn_restore() {
  [ -f "$rdn_backup_dir/complete" ] || { rdn_step restore failed "no complete backup in $rdn_backup_dir"; return 1; }
  rdn_restore_ok=0
  for rdn_entry in "$rdn_backup_dir"/*.path; do
    [ -f "$rdn_entry" ] || continue
    rdn_base=${rdn_entry%.path}
    rdn_target=$(cat "$rdn_entry")
    if [ -e "$rdn_base.absent" ]; then
      rm -f "$rdn_target" || rdn_restore_ok=1
    else
      rdn_put_file "$rdn_target" "$(cat "$rdn_base.mode")" < "$rdn_base.orig" || rdn_restore_ok=1
    fi
  done
  if [ "$rdn_restore_ok" = 0 ]; then rdn_step restore ok; else rdn_step restore failed; fi
  return "$rdn_restore_ok"
}
rdn_api_ready() {
  rdn_main=$(systemctl --user show -p MainPID --value "$rdn_unit")
  rdn_sd=$(rdn_state_dir "$rdn_main")
  if command -v curl >/dev/null 2>&1; then
    curl -sf --max-time 2 --unix-socket "$rdn_sd/api.sock" http://rootlesskit/v1/info >/dev/null 2>&1
  else
    [ -S "$rdn_sd/api.sock" ] && rdn_child_pid "$rdn_sd" >/dev/null
  fi
}
rdn_invocation() { systemctl --user show -p InvocationID --value "$rdn_unit" 2>/dev/null; }
rdn_wait_active() {
  rdn_deadline=$(( $(date +%s) + rdn_active_timeout ))
  while :; do
    rdn_state=$(systemctl --user show -p ActiveState --value "$rdn_unit" 2>/dev/null)
    if [ "$rdn_state" = active ] && [ "$(rdn_invocation)" != "$1" ] && rdn_api_ready; then return 0; fi
    [ "$rdn_state" = failed ] && return 1
    [ "$(date +%s)" -ge "$rdn_deadline" ] && return 1
    sleep 0.3
  done
}
rdn_restart() {
  systemctl --user reset-failed "$rdn_unit" >/dev/null 2>&1
  rdn_before=$(rdn_invocation)
  if ! rdn_err=$(systemctl --user restart --no-block "$rdn_unit" 2>&1); then rdn_step "$1restart" failed "$rdn_err"; return 1; fi
  rdn_step "$1restart" ok
  if rdn_wait_active "$rdn_before"; then rdn_step "$1wait-active" ok; return 0; fi
  rdn_step "$1wait-active" failed "not active with a RootlessKit API within $rdn_active_timeout s (state: $rdn_state)"
  return 1
}
rdn_daemon_reload() {
  if rdn_err=$(systemctl --user daemon-reload 2>&1); then rdn_step "$1daemon-reload" ok; return 0; fi
  rdn_step "$1daemon-reload" failed "$rdn_err"
  return 1
}
rdn_journal() {
  rdn_lines=$(journalctl --user -u "$rdn_unit" -n 40 --no-pager 2>/dev/null)
  [ -n "$rdn_lines" ] || rdn_lines=$(systemctl --user status "$rdn_unit" -n 40 --no-pager 2>&1)
  printf 'RDN journal %s\n' "$(printf '%s\n' "$rdn_lines" | rdn_b64)"
}
# $1 = restart | no-restart: whether the daemon must be restarted on the restored files.
rdn_roll_back() {
  rdn_journal
  rdn_restore || rdn_finish rollback-failed 78
  rdn_daemon_reload rollback- || rdn_finish rollback-failed 78
  if [ "$1" = restart ]; then
    rdn_restart rollback- || { rdn_journal; rdn_finish rollback-failed 78; }
  fi
  rdn_finish rolled-back 77
}
