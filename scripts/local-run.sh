#!/usr/bin/env bash
# Runs tokend's main job locally, with no cluster: a stand-in control plane
# (fakecp) on loopback, `tokend run` keeping a token file fresh in
# ./.tokend-dev, and a consumer built on the tokenfile package (tokenwatch)
# printing each change it sees. Ctrl-C stops everything cleanly.
#
#   scripts/local-run.sh                  # until Ctrl-C
#   DEMO_SECONDS=20 scripts/local-run.sh  # stop by itself after 20 s
#
# Tokens are shown only as fingerprints; the token itself is in
# .tokend-dev/token, as a pod's containers would read it.
set -euo pipefail
cd "$(dirname "$0")/.."

dir=${TOKEND_DEV_DIR:-.tokend-dev}
cp_port=${CP_PORT:-18080}
health_port=${HEALTH_PORT:-18081}
mkdir -p "$dir" bin
rm -f "$dir/cp.pub"

echo "building tokend, fakecp and tokenwatch into ./bin ..."
go build -o bin/ ./cmd/tokend ./cmd/fakecp ./cmd/tokenwatch

pids=()
stop() {
	trap - INT TERM EXIT
	if [ ${#pids[@]} -gt 0 ]; then
		kill -TERM "${pids[@]}" 2>/dev/null || true
		wait "${pids[@]}" 2>/dev/null || true
	fi
	echo "stopped."
}
trap 'stop; exit 0' INT TERM
trap stop EXIT

# The stand-in control plane mints 10 s JWTs and, like the real one, hands
# out its cached token until few seconds remain (5 s here, 30 s there).
# tokend refreshes once 80% of a token's lifetime has passed, so a new token
# arrives about every 8 s, well inside the 30 s refresh interval.
bin/fakecp --addr "127.0.0.1:$cp_port" --public-key-out "$dir/cp.pub" --lifetime 10s --cache-floor 5s &
pids+=($!)
for _ in $(seq 100); do [ -s "$dir/cp.pub" ] && break; sleep 0.1; done
[ -s "$dir/cp.pub" ] || { echo "fakecp did not start" >&2; exit 1; }

bin/tokenwatch --token-file "$dir/token" &
pids+=($!)

AMBIENT_CP_TOKEN_URL="http://127.0.0.1:$cp_port/token" \
TOKEND_PUBLIC_KEY_FILE="$dir/cp.pub" \
SESSION_ID="local-session-0001" \
TOKEND_TOKEN_FILE="$dir/token" \
TOKEND_REFRESH_INTERVAL=30s \
TOKEND_HEALTH_ADDR="127.0.0.1:$health_port" \
	bin/tokend run &
pids+=($!)
echo "tokend is running: token file $dir/token, probes and metrics on http://127.0.0.1:$health_port (/readyz, /metrics)"

if [ -n "${DEMO_SECONDS:-}" ]; then
	sleep "$DEMO_SECONDS" &
	wait $! || true
	stop
	exit 0
fi
# Ends when any of the three exits, or on Ctrl-C.
wait -n "${pids[@]}" || true
