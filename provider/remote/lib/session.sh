# Sourced first by every script: the session systemd does not give an SSH command.
# Over SSH there is no login session: systemd 257 no longer guesses the user bus (systemd#34849),
# and the rootless Docker tools live outside the default PATH.
XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/run/user/$(id -u)}"
DBUS_SESSION_BUS_ADDRESS="${DBUS_SESSION_BUS_ADDRESS:-unix:path=$XDG_RUNTIME_DIR/bus}"
PATH="$PATH:/usr/share/docker.io/contrib:/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin:$HOME/bin"
export XDG_RUNTIME_DIR DBUS_SESSION_BUS_ADDRESS PATH
