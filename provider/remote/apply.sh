#!/bin/sh
# pulumi-rootless-docker: converge one host's files and daemon, under the host lock. Runs to the end even when
# the SSH connection drops, so the host ends either unchanged or fully applied.
#
# Parameters (a header of quoted assignments the engine puts after the #! line):
#   rdn_unit            the systemd user unit (docker.service)
#   rdn_lock_wait       seconds to wait for the host lock; rdn_lock_holder: who we are, shown to a waiting apply
#   rdn_backup_dir      where the previous files are kept (~/ = the home); rdn_active_timeout: seconds for the restart
#   rdn_expected        lines "BASE64-PATH SHA256|absent": each file as the plan saw it (compare-and-swap)
#   rdn_writes          lines "BASE64-PATH MODE BASE64-CONTENT|-": the files to write, in order ("-" = remove)
#   rdn_daemon_reload   1 = daemon-reload after writing
#   rdn_restart         1 = restart the unit and wait until it is active with a RootlessKit API
#   rdn_expected_invocation  when set: the unit's InvocationID the plan saw; a restart-only apply proceeds only if it
#                       is still that one (another apply or a crash restarted the daemon since: plan again)
#   rdn_facts           base64 of the facts script, run again under the lock once done (the apply proves itself)
trap '' HUP PIPE
# rdn:include lib/session.sh
# rdn:include lib/rootlesskit.sh
# rdn:include lib/apply.sh
rdn_backup_dir=$(rdn_expand "$rdn_backup_dir")

rdn_lock
rdn_compare
if [ -n "${rdn_expected_invocation+set}" ] && [ "$(rdn_invocation)" != "$rdn_expected_invocation" ]; then
  printf 'RDN changed %s\n' "$(printf 'InvocationID' | rdn_b64)"
  rdn_step compare failed "the daemon was restarted since the plan (InvocationID $rdn_expected_invocation is now $(rdn_invocation))"
  rdn_finish changed-since-plan 76
fi

rdn_changed=0
# Nothing to write: the previous backup stays (it is what a rollback of the last writing apply needs), and a
# failure below restores nothing, because nothing of ours changed.
if [ -n "$rdn_writes" ]; then
  rdn_staging="$rdn_backup_dir.new"
  { rm -rf "$rdn_staging" && mkdir -p "$rdn_staging"; } || { rdn_step backup failed "cannot create $rdn_staging"; rdn_finish failed 1; }
  rdn_index=0
  while read -r rdn_p64 rdn_mode rdn_c64 <&3; do
    [ -n "$rdn_p64" ] || continue
    rdn_target=$(rdn_expand "$(rdn_unb64 "$rdn_p64")")
    rdn_base="$rdn_staging/$rdn_index"
    printf '%s' "$rdn_target" > "$rdn_base.path"
    if [ -e "$rdn_target" ]; then
      { cp "$rdn_target" "$rdn_base.orig" && stat -c %a "$rdn_target" > "$rdn_base.mode"; } || { rdn_step backup failed "cannot copy $rdn_target"; rdn_finish failed 1; }
    else
      : > "$rdn_base.absent"
    fi
    rdn_index=$((rdn_index + 1))
  done 3<<RDN_WRITES
$rdn_writes
RDN_WRITES
  : > "$rdn_staging/complete"
  { rm -rf "$rdn_backup_dir" && mv "$rdn_staging" "$rdn_backup_dir"; } || { rdn_step backup failed "cannot replace $rdn_backup_dir"; rdn_finish failed 1; }
  rdn_step backup ok

  while read -r rdn_p64 rdn_mode rdn_c64 <&3; do
    [ -n "$rdn_p64" ] || continue
    rdn_target=$(rdn_expand "$(rdn_unb64 "$rdn_p64")")
    if [ "$rdn_c64" = - ]; then
      if [ ! -e "$rdn_target" ]; then rdn_step write unchanged "$rdn_target"
      elif rm -f "$rdn_target"; then rdn_changed=1; rdn_step write ok "$rdn_target"
      else rdn_step write failed "$rdn_target"; rdn_roll_back no-restart; fi
    elif rdn_unb64 "$rdn_c64" | cmp -s - "$rdn_target" 2>/dev/null && [ "$(stat -c %a "$rdn_target")" = "$rdn_mode" ]; then
      rdn_step write unchanged "$rdn_target"
    elif rdn_unb64 "$rdn_c64" | rdn_put_file "$rdn_target" "$rdn_mode"; then
      rdn_changed=1; rdn_step write ok "$rdn_target"
    else
      rdn_step write failed "$rdn_target"; rdn_roll_back no-restart
    fi
  done 3<<RDN_WRITES
$rdn_writes
RDN_WRITES
fi

if [ "$rdn_daemon_reload" = 1 ] && ! rdn_daemon_reload; then
  if [ -n "$rdn_writes" ]; then rdn_roll_back no-restart; fi
  rdn_finish failed 1
fi
if [ "$rdn_restart" = 1 ]; then
  if rdn_restart; then
    rdn_changed=1
  elif [ -n "$rdn_writes" ]; then
    # The unit must not stay down on the new files: restore them and restart on the old ones.
    rdn_roll_back restart
  else
    rdn_journal
    rdn_finish failed 1
  fi
fi

if [ -n "$rdn_facts" ]; then
  printf 'RDN facts %s\n' "$(rdn_unb64 "$rdn_facts" | /bin/sh 2>/dev/null | rdn_b64)"
fi
if [ "$rdn_changed" = 1 ]; then rdn_finish applied 0; else rdn_finish unchanged 0; fi
