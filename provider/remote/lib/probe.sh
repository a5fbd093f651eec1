# The reachability probe of one place: run by verify.sh inside the RootlessKit namespace (sh -c, under nsenter) and
# inside a bridge container (busybox there: no bash, no base64), so it needs only POSIX sh, ip, ping and one TCP
# tool, and prints plain markers of addresses, numbers and words. Arguments: the seconds to keep retrying, then the
# targets in one word list, each ADDRESS,PORT|-,1|0 (TCP port or none, ICMP or not). It retries until every probe
# succeeds because router advertisements and DAD settle for a few seconds after a restart.
deadline=$(( $(date +%s) + $1 ))
targets=$2
if command -v bash >/dev/null 2>&1 && command -v timeout >/dev/null 2>&1; then tcp=bash
elif command -v nc >/dev/null 2>&1 && nc -h 2>&1 | grep -q -e '-z'; then tcp=nc
elif command -v curl >/dev/null 2>&1; then tcp=curl
elif command -v nc >/dev/null 2>&1; then tcp=nc-plain
else tcp=none; fi
echo "RDN tcptool $tcp"
# The single quotes keep $1 and $2 for the inner bash.
# shellcheck disable=SC2016
tcp_connect() {
  case $tcp in
    bash) timeout 4 bash -c 'exec 3<>"/dev/tcp/$1/$2"' probe "$1" "$2" 2>/dev/null ;;
    nc) nc -z -w 3 "$1" "$2" </dev/null >/dev/null 2>&1 ;;
    curl) [ "$(curl -s -o /dev/null -w '%{time_connect}' --connect-timeout 3 --max-time 4 "http://[$1]:$2/" 2>/dev/null)" != 0.000000 ] ;;
    nc-plain) echo | nc -w 3 "$1" "$2" >/dev/null 2>&1 ;;
    *) return 1 ;;
  esac
}
# The last line of a failure, reduced to characters that cannot break the marker framing.
reason() { grep -v '^$' | tail -n 1 | tr -cd 'A-Za-z0-9 .:,%=()/-'; }
attempt=0
while :; do
  attempt=$((attempt + 1))
  echo "RDN attempt $attempt"
  ip -6 addr show 2>/dev/null | awk '$1 == "inet6" && / scope global/ { print "RDN addr", $2, (/tentative/ ? "tentative" : "ok") }'
  ip -6 route show 2>/dev/null | awk '$1 == "default" { $1 = $1; print "RDN route", $0; exit }'
  all=1
  # Targets are validated addresses and numbers: splitting the list on spaces is all it takes.
  for target in $targets; do
    address=${target%%,*}
    rest=${target#*,}
    port=${rest%%,*}
    if [ "${rest#*,}" = 1 ]; then
      if out=$(ping -6 -c 1 -W 2 "$address" 2>&1); then
        rtt=$(printf '%s\n' "$out" | sed -n 's/.*time[=<] *\([0-9.]*\).*/\1/p' | head -n 1)
        echo "RDN ping $address ok ${rtt:--}"
      else
        all=0
        echo "RDN ping $address fail $(printf '%s\n' "$out" | reason)"
      fi
    fi
    if [ "$port" != - ]; then
      if tcp_connect "$address" "$port"; then echo "RDN tcp $address $port ok"; else all=0; echo "RDN tcp $address $port fail"; fi
    fi
  done
  [ "$all" = 1 ] && break
  [ "$(date +%s)" -ge "$deadline" ] && break
  sleep 1
done
echo "RDN done"
