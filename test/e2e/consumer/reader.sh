#!/bin/sh
# reader.sh is the consumer of the end-to-end test's workload images
# (registry.example/runner:2.3, registry.example/mcp-server:0.9): it reads
# the token file afresh five times a second, as a consumer should, and
# prints only what it saw, never the token: the first 12 hex digits of the
# file's sha256, which is the fingerprint tokend logs for the token it
# wrote. A read of a partial or foreign file shows as a hash that tokend
# never logged. A withdrawal record ("# token withdrawn: ...", written in
# place of a token the control plane refused) is no token, and says so.
#
#   start: uid U gid G, token sha256 H, owner uid O    the first read found a token
#   start: uid U gid G, token withdrawn, owner uid O   ... a withdrawal record
#   start: uid U gid G, no token at PATH               ... no file
#   token sha256 H                                     the token changed
#   token withdrawn                                    a withdrawal replaced it
#   token gone from PATH                               the file went away
#   reading: N reads, token sha256 H                   every 25 reads (or: token withdrawn)
#   done: N reads                                      SIGUSR1: the work is over (exit 0)
#   stopping: TERM                                     SIGTERM (exit 0)
#
# TOKEN_FILE overrides the path, /var/run/ambient/token.
f=${TOKEN_FILE:-/var/run/ambient/token}
n=0
trap 'kill $! 2>/dev/null; echo "stopping: TERM"; exit 0' TERM
trap 'kill $! 2>/dev/null; echo "done: $n reads"; exit 0' USR1

# look sets h to the file's hash prefix, to "withdrawn" for a withdrawal
# record, or to nothing when there is no file; and what to the words that
# name it.
look() {
	h=
	if [ -e "$f" ]; then
		first=
		read -r first <"$f" 2>/dev/null
		case $first in
		"# token withdrawn"*) h=withdrawn ;;
		*) h=$(sha256sum <"$f" | cut -c1-12) ;;
		esac
	fi
	case $h in
	withdrawn) what="token withdrawn" ;;
	"") what="no token" ;;
	*) what="token sha256 $h" ;;
	esac
}

look
if [ -n "$h" ]; then
	echo "start: uid $(id -u) gid $(id -g), $what, owner uid $(stat -c %u "$f")"
else
	echo "start: uid $(id -u) gid $(id -g), no token at $f"
fi
last=$h
while :; do
	sleep 0.2 &
	wait $!
	n=$((n + 1))
	look
	if [ "$h" != "$last" ]; then
		if [ -n "$h" ]; then echo "$what"; else echo "token gone from $f"; fi
		last=$h
	fi
	if [ $((n % 25)) -eq 0 ]; then
		echo "reading: $n reads, $what"
	fi
done
