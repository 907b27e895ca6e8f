#!/usr/bin/env bash
# Runs tokend's main job locally, with no cluster: a stand-in control plane
# (fakecp) on loopback, `tokend run` keeping a token file fresh in
# ./.tokend-dev, and a consumer built on the tokenfile package (tokenwatch)
# printing each change it sees. Ctrl-C stops everything cleanly.
#
#   scripts/local-run.sh                         # until Ctrl-C
#   DEMO_SECONDS=20 scripts/local-run.sh         # stop by itself after 20 s
#   AUTH=service-account scripts/local-run.sh    # the successor exchange:
#       POST over TLS with a rotating ServiceAccount token
#
# Tokens are shown only as fingerprints; the token itself is in
# .tokend-dev/token, as a pod's containers would read it.
set -euo pipefail
cd "$(dirname "$0")/.."

dir=${TOKEND_DEV_DIR:-.tokend-dev}
cp_port=${CP_PORT:-18080}
health_port=${HEALTH_PORT:-18081}
mkdir -p "$dir" bin
auth=${AUTH:-encrypted-session}
rm -f "$dir/cp.pub" "$dir/ca.pem" "$dir/sa-token" "$dir/token"

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

case "$auth" in
encrypted-session)
	# The stand-in control plane mints 10 s JWTs and, like the real one,
	# hands out its cached token until few seconds remain (5 s here, 30 s
	# there). tokend refreshes once 80% of a token's lifetime has passed, so
	# a new token arrives about every 8 s, well inside the 30 s interval.
	bin/fakecp --addr "127.0.0.1:$cp_port" --public-key-out "$dir/cp.pub" --lifetime 10s --cache-floor 5s &
	ready="$dir/cp.pub"
	export AMBIENT_CP_TOKEN_URL="http://127.0.0.1:$cp_port/token" \
		TOKEND_PUBLIC_KEY_FILE="$dir/cp.pub" SESSION_ID="local-session-0001"
	;;
service-account)
	# TLS with a CA fakecp generates; it also plays the kubelet, rotating a
	# ServiceAccount token in $dir/sa-token. Tokens live 20 s here (two
	# minutes in the real contract); tokend replaces each at half life.
	bin/fakecp --auth service-account --addr "127.0.0.1:$cp_port" --lifetime 20s \
		--ca-out "$dir/ca.pem" --identity-out "$dir/sa-token" &
	ready="$dir/sa-token"
	export TOKEND_AUTH=service-account AMBIENT_CP_TOKEN_URL="https://127.0.0.1:$cp_port/token" \
		AMBIENT_CP_CA_PATH="$dir/ca.pem" AMBIENT_WORKLOAD_IDENTITY_PATH="$dir/sa-token"
	;;
*)
	echo "AUTH must be encrypted-session or service-account, not $auth" >&2
	exit 2
	;;
esac
pids+=($!)
for _ in $(seq 100); do [ -s "$ready" ] && break; sleep 0.1; done
[ -s "$ready" ] || { echo "fakecp did not start" >&2; exit 1; }

bin/tokenwatch --token-file "$dir/token" &
pids+=($!)

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
