#!/bin/sh
# pulumi-rootless-docker: restore the backups of the last apply (the engine's answer to a failed required check),
# unless another apply has written since: the files must still be what ours wrote, or its backups are not ours.
#
# Parameters: rdn_unit, rdn_lock_wait, rdn_lock_holder, rdn_backup_dir, rdn_active_timeout (as apply.sh);
#   rdn_expected   lines "BASE64-PATH SHA256|absent": each file as the apply being undone wrote it
#   rdn_restart    1 = restart on the restored files (the daemon must not keep running the rejected settings)
trap '' HUP PIPE
# rdn:include lib/session.sh
# rdn:include lib/rootlesskit.sh
# rdn:include lib/apply.sh
rdn_backup_dir=$(rdn_expand "$rdn_backup_dir")
rdn_lock
rdn_compare
if [ "$rdn_restart" = 1 ]; then rdn_roll_back restart; else rdn_roll_back no-restart; fi
