#!/bin/sh
# reader.sh is the consumer of the end-to-end test's workload images
# (registry.example/runner:2.3, registry.example/mcp-server:0.9): it reads
# the token file afresh five times a second, as a consumer should, and
# prints only what it saw, never the token: the first 12 hex digits of the
# file's sha256, which is the fingerprint tokend logs for the token it
# wrote. A read of a partial or foreign file shows as a hash that tokend
# never logged.
#
#   start: uid U gid G, token sha256 H, owner uid O    the first read found a token
#   start: uid U gid G, no token at PATH               the first read found none
#   token sha256 H                                     the token changed
#   token gone from PATH                               the file went away
#   reading: N reads, token sha256 H                   every 25 reads
#   done: N reads                                      SIGUSR1: the work is over (exit 0)
#   stopping: TERM                                     SIGTERM (exit 0)
#
# TOKEN_FILE overrides the path, /var/run/ambient/token.
f=${TOKEN_FILE:-/var/run/ambient/token}
n=0
trap 'kill $! 2>/dev/null; echo "stopping: TERM"; exit 0' TERM
trap 'kill $! 2>/dev/null; echo "done: $n reads"; exit 0' USR1

# look sets h to the file's hash prefix, or to nothing when there is no file.
look() {
	h=
	if [ -e "$f" ]; then
		h=$(sha256sum <"$f" | cut -c1-12)
	fi
}

look
if [ -n "$h" ]; then
	echo "start: uid $(id -u) gid $(id -g), token sha256 $h, owner uid $(stat -c %u "$f")"
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
		if [ -n "$h" ]; then echo "token sha256 $h"; else echo "token gone from $f"; fi
		last=$h
	fi
	if [ $((n % 25)) -eq 0 ]; then
		echo "reading: $n reads, token sha256 ${h:-none}"
	fi
done
