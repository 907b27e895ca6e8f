#!/usr/bin/env bash
# Runs tokend's main job locally, with no cluster: a stand-in control plane
# (fakecp) on loopback, `tokend run` keeping a token file fresh in
# ./.tokend-dev, and a consumer built on the tokenfile package (tokenwatch)
# printing each change it sees. Ctrl-C stops everything cleanly.
#
#   scripts/local-run.sh                         # until Ctrl-C
#   DEMO_SECONDS=20 scripts/local-run.sh         # stop by itself after 20 s
#   AUTH=bearer scripts/local-run.sh             # the successor as served:
#       GET over TLS with a capability from a file
#
# Tokens are shown only as fingerprints; the token itself is in
# .tokend-dev/token, as a pod's containers would read it.
#
# Ports (loopback): CP_PORT (default 18080) for the stand-in control plane,
# HEALTH_PORT (default 18081) for tokend's probes and metrics. A port that
# is taken stops the script, naming the port and its variable.
#
# Each process starts once the one before it is ready: fakecp once its
# port answers HTTP (a key or CA file on disk proves nothing: fakecp writes
# it before it binds the port), then tokenwatch, then tokend, which is
# running once its /startupz answers 200 (the first token is on disk).
set -euo pipefail
cd "$(dirname "$0")/.."

dir=${TOKEND_DEV_DIR:-.tokend-dev}
unset TOKEND_DEV_DIR # the script's, not a setting: tokend refuses unknown TOKEND_ variables
cp_port=${CP_PORT:-18080}
health_port=${HEALTH_PORT:-18081}
mkdir -p "$dir" bin
auth=${AUTH:-encrypted-session}
rm -f "$dir/cp.pub" "$dir/ca.pem" "$dir/sa-token" "$dir/capability" "$dir/token"

echo "building tokend, fakecp and tokenwatch into ./bin ..."
go build -o bin/ ./cmd/tokend ./test/fakecp ./examples/tokenwatch

# http_status PORT PATH prints the status code of GET PATH on loopback PORT,
# or nothing when nothing answers HTTP there. It needs no curl: a plain
# request to fakecp's TLS port gets Go's "400 Bad Request", which is
# enough to show that fakecp is serving.
http_status() (
	exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 0
	printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$2" >&3
	read -r -t 5 _ code _ <&3 || true
	echo "${code:-}"
) 2>/dev/null

# free_port PORT VAR fails, naming the port and its override, when
# something already listens on PORT.
free_port() {
	if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
		echo "port $1 is taken: something already listens on 127.0.0.1:$1. Stop it, or pick another port: $2=<port> $0" >&2
		exit 1
	fi
}

# wait_ready NAME PID PORT PATH WANT VAR waits up to 90 s until GET PATH on
# PORT answers WANT (any status when WANT is empty), failing as soon as
# process PID has exited.
wait_ready() {
	local name=$1 pid=$2 port=$3 path=$4 want=$5 var=$6 code deadline=$((SECONDS + 90))
	while :; do
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "$name exited before it was ready on 127.0.0.1:$port (see its log above); if the port was taken, set $var to a free one" >&2
			exit 1
		fi
		code=$(http_status "$port" "$path")
		if [ -n "$code" ] && { [ -z "$want" ] || [ "$code" = "$want" ]; }; then
			return 0
		fi
		if [ "$SECONDS" -ge "$deadline" ]; then
			echo "$name is not ready after 90 s: GET 127.0.0.1:$port$path answers '${code:-nothing}'" >&2
			exit 1
		fi
		sleep 0.1
	done
}

free_port "$cp_port" CP_PORT
free_port "$health_port" HEALTH_PORT

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
trap 'code=$?; stop; exit $code' EXIT

case "$auth" in
encrypted-session)
	# The stand-in control plane mints 10 s JWTs and, like the real one,
	# hands out its cached token until few seconds remain (5 s here, 30 s
	# there). tokend refreshes once 80% of a token's lifetime has passed, so
	# a new token arrives about every 8 s, well inside the 30 s interval.
	bin/fakecp --addr "127.0.0.1:$cp_port" --public-key-out "$dir/cp.pub" --lifetime 10s --cache-floor 5s &
	export AMBIENT_CP_TOKEN_URL="http://127.0.0.1:$cp_port/token" \
		TOKEND_PUBLIC_KEY_FILE="$dir/cp.pub" SESSION_ID="local-session-0001"
	;;
bearer)
	# TLS with a CA fakecp generates, and the capability it accepts in
	# $dir/capability. Tokens live 30 s here (five minutes in the real one).
	bin/fakecp --auth bearer --addr "127.0.0.1:$cp_port" --lifetime 30s \
		--ca-out "$dir/ca.pem" --credential-out "$dir/capability" &
	export TOKEND_AUTH=bearer AMBIENT_CP_TOKEN_URL="https://127.0.0.1:$cp_port/token" \
		AMBIENT_CP_CA_CERT_FILE="$dir/ca.pem" TOKEND_CREDENTIAL_FILE="$dir/capability"
	;;
*)
	echo "AUTH must be encrypted-session or bearer, not $auth" >&2
	exit 2
	;;
esac
fakecp=$!
pids+=("$fakecp")
wait_ready fakecp "$fakecp" "$cp_port" /token "" CP_PORT

bin/tokenwatch --token-file "$dir/token" &
pids+=($!)

TOKEND_TOKEN_FILE="$dir/token" \
TOKEND_REFRESH_INTERVAL=30s \
TOKEND_HEALTH_ADDR="127.0.0.1:$health_port" \
	bin/tokend run &
tokend=$!
pids+=("$tokend")
wait_ready tokend "$tokend" "$health_port" /startupz 200 HEALTH_PORT
echo "tokend is running: token file $dir/token, probes and metrics on http://127.0.0.1:$health_port (/readyz, /metrics)"

# all_alive fails, naming it, when one of the three has exited.
all_alive() {
	local pid
	for pid in "${pids[@]}"; do
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "a process of the local run (pid $pid) exited early; see its log above" >&2
			return 1
		fi
	done
}

if [ -n "${DEMO_SECONDS:-}" ]; then
	sleep "$DEMO_SECONDS" &
	wait $! || true
	all_alive || exit 1
	stop
	exit 0
fi
# Ends when any of the three exits (an error), or on Ctrl-C (success).
wait -n "${pids[@]}" || true
all_alive || exit 1
