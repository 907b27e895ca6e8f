#!/usr/bin/env bash
# Runs tokend's main job on this machine, with no cluster: a stand-in for
# the control plane's token endpoint (fakecp), `tokend run` keeping a token
# file fresh, and an app built on the tokenfile package (tokenwatch) that
# prints each token change it sees. Each process's lines are labelled
# [fakecp], [tokend] or [app]; tokens appear only as fingerprints.
#
#   scripts/local-run.sh                          # until Ctrl-C (exit status 0)
#   DEMO_SECONDS=20 scripts/local-run.sh          # stops by itself after 20 s
#   AUTH=bearer scripts/local-run.sh              # the successor control plane's
#                                                 # exchange: GET over TLS with a capability
#   CP_PORT=0 HEALTH_PORT=0 scripts/local-run.sh  # any free ports
#
# Settings (none of them tokend's own, so none starts with TOKEND_):
#   LOCAL_RUN_DIR  where the binaries, the token file and the logs go
#                  (default .tokend-dev; the token is in $LOCAL_RUN_DIR/token)
#   CP_PORT        fakecp's loopback port (default 18080; 0: any free port)
#   HEALTH_PORT    tokend's probes and metrics (default 18081; 0: any free port)
#   AUTH           encrypted-session (default) or bearer
#   DEMO_SECONDS   stop after this many seconds once the first token is on disk
#
# Exit status: 0 when stopped by Ctrl-C, SIGINT, SIGTERM or DEMO_SECONDS;
# 1 when a port is taken, the build fails, or one of the three processes
# exits on its own (the script then stops the other two); 2 for a bad setting.
#
# The three processes run in process groups of their own, so Ctrl-C reaches
# this script only, which then stops them with SIGTERM: any of them that
# exits before that is an error. (A script that starts this one with `&`
# makes the shell ignore SIGINT for it, which no trap can undo: stop such a
# run with SIGTERM.) Each starts once the one before it is
# ready: fakecp once its log says it serves (which also gives its port),
# tokend's readiness once /startupz answers 200 (the first token is on disk).
set -euo pipefail
cd "$(dirname "$0")/.."

dir=${LOCAL_RUN_DIR:-.tokend-dev}
cp_port=${CP_PORT:-18080}
health_port=${HEALTH_PORT:-18081}
auth=${AUTH:-encrypted-session}

# setting_error VAR VALUE PROBLEM FIX reports a bad setting and exits 2.
setting_error() {
	echo "local run: $1=$2: $3. Fix: $4" >&2
	exit 2
}

if [ -n "${TOKEND_DEV_DIR+set}" ]; then
	setting_error TOKEND_DEV_DIR "$TOKEND_DEV_DIR" "renamed" "set LOCAL_RUN_DIR instead (tokend refuses TOKEND_ variables it does not know)"
fi
case "$auth" in
encrypted-session | bearer) ;;
*) setting_error AUTH "$auth" "unknown exchange" "set AUTH=encrypted-session (the deployed one, the default) or AUTH=bearer" ;;
esac
for v in CP_PORT:"$cp_port" HEALTH_PORT:"$health_port"; do
	case "${v#*:}" in
	'' | *[!0-9]*) setting_error "${v%%:*}" "${v#*:}" "not a port number" "set a number from 1 to 65535, or 0 for any free port" ;;
	esac
	if [ "${v#*:}" -gt 65535 ]; then
		setting_error "${v%%:*}" "${v#*:}" "not a port number" "set a number from 1 to 65535, or 0 for any free port"
	fi
done
if [ "$cp_port" -ne 0 ] && [ "$cp_port" = "$health_port" ]; then
	setting_error HEALTH_PORT "$health_port" "the same port as CP_PORT" "give the two different ports, or 0 for any free port"
fi
case "${DEMO_SECONDS:-1}" in
'' | *[!0-9]*) setting_error DEMO_SECONDS "$DEMO_SECONDS" "not a whole number of seconds" "set e.g. DEMO_SECONDS=20, or leave it unset to run until Ctrl-C" ;;
esac

# free_port PORT VAR fails, naming the port and its variable, when
# something already listens on 127.0.0.1:PORT. Checked before the build,
# which can take minutes on a cold cache.
free_port() {
	[ "$1" -eq 0 ] && return 0
	if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
		echo "local run: port $1 is taken: something already listens on 127.0.0.1:$1. Fix: stop it, or pick another port: $2=<port> (0: any free port) $0" >&2
		exit 1
	fi
}
free_port "$cp_port" CP_PORT
free_port "$health_port" HEALTH_PORT

mkdir -p "$dir/bin"
rm -f "$dir/cp.pub" "$dir/ca.pem" "$dir/capability" "$dir/token" "$dir"/*.log

where() { [ "$1" -eq 0 ] && echo "a free loopback port" || echo "127.0.0.1:$1"; }
echo "local run: three processes, each line labelled with its name:"
echo "  [fakecp] a stand-in for the control plane's token endpoint ($auth exchange) on $(where "$cp_port")"
echo "  [tokend] tokend run: exchanges with it and keeps the token fresh in $dir/token"
echo "  [app]    your app: tokenwatch, reading $dir/token with the tokenfile package, prints each token change"

# label NAME prints each line of its input as "[NAME] line" and appends
# it, unlabelled, to $dir/NAME.log, where the script looks for readiness.
# It ignores Ctrl-C, which reaches it too, so that the last lines of its
# process are still shown.
label() {
	trap '' INT
	local line
	while IFS= read -r line || [ -n "$line" ]; do
		printf '[%s] %s\n' "$1" "$line"
		printf '%s\n' "$line" >>"$dir/$1.log"
	done
}

pids=()
labellers=()
declare -A name_of
# start NAME COMMAND... runs COMMAND in a process group of its own (so a
# Ctrl-C to the terminal's group does not reach it) with its output
# labelled, and sets pid.
start() {
	local name=$1 fd
	shift
	exec {fd}> >(label "$name")
	labellers+=($!)
	set -m
	"$@" >&"$fd" 2>&1 &
	pid=$!
	set +m
	exec {fd}>&-
	pids+=("$pid")
	name_of[$pid]=$name
}

stopping=
build=
# stop ends the build, or the three processes, with SIGTERM and waits for
# them and for their last lines.
stop() {
	[ -n "$stopping" ] && return 0
	stopping=1
	trap '' INT TERM HUP
	if [ -n "$build" ]; then
		kill -TERM "$build" 2>/dev/null || true
		wait "$build" 2>/dev/null || true
	fi
	if [ ${#pids[@]} -gt 0 ]; then
		kill -TERM "${pids[@]}" 2>/dev/null || true
		for p in "${pids[@]}" "${labellers[@]}"; do
			wait "$p" 2>/dev/null || true
		done
	fi
	echo "local run stopped; the last token stays in $dir/token"
}
trap 'stop; exit 0' INT TERM HUP
trap 'status=$?; stop; exit $status' EXIT

# build_progress shows go build -v's output as a count of compiled
# packages, and passes everything else on (downloads, errors).
build_progress() {
	local n=0 line
	while IFS= read -r line; do
		case $line in
		*' '* | '#'*) printf '%s\n' "$line" ;;
		*)
			n=$((n + 1))
			if [ $((n % 20)) -eq 0 ]; then echo "  $n packages compiled ..."; fi
			;;
		esac
	done
}
echo "building tokend, fakecp and tokenwatch into $dir/bin with go build (on a cold cache the first build downloads and compiles the modules: minutes) ..."
build_start=$SECONDS
# In the background, so that a signal stops the script (and the build) at
# once: a foreground command would be waited for first.
exec {fd}> >(build_progress)
progress=$!
go build -v -o "$dir/bin/" ./cmd/tokend ./test/fakecp ./examples/tokenwatch >&"$fd" 2>&1 &
build=$!
exec {fd}>&-
build_status=0
wait "$build" || build_status=$?
build=
wait "$progress" || true
if [ "$build_status" -ne 0 ]; then
	echo "local run: the build failed (see above)" >&2
	exit 1
fi
echo "built in $((SECONDS - build_start)) s"

# died PID WHEN reports that a process exited on its own, and exits 1.
died() {
	local name=${name_of[$1]:-a process} status=0
	wait "$1" 2>/dev/null || status=$?
	echo "local run: $name (pid $1) exited $2 with status $status, without being asked to; see its [$name] lines above" >&2
	exit 1
}

# wait_log PID NAME TEXT waits until NAME's log has a line containing
# TEXT, and sets found to that line. It fails when the process exits
# first, or after 120 s.
found=
wait_log() {
	local deadline=$((SECONDS + 120))
	while :; do
		if found=$(grep -m1 -F -- "$3" "$dir/$2.log" 2>/dev/null); then
			return 0
		fi
		kill -0 "$1" 2>/dev/null || died "$1" "before it was ready"
		if [ "$SECONDS" -ge "$deadline" ]; then
			echo "local run: $2 is not ready after 120 s: no line with '$3' in its log" >&2
			exit 1
		fi
		sleep 0.1
	done
}

# http_status PORT PATH prints the status code of GET PATH on loopback
# PORT, or nothing when nothing answers. It needs no curl, and a peer that
# closes early costs an empty answer, never a SIGPIPE.
http_status() (
	trap '' PIPE
	exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 0
	printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$2" >&3 || exit 0
	read -r -t 5 _ code _ <&3 || true
	echo "${code:-}"
) 2>/dev/null

case "$auth" in
encrypted-session)
	# The stand-in mints 10 s JWTs and, like the control plane, hands out
	# its cached token until few seconds remain (5 s here, 30 s there).
	start fakecp "$dir/bin/fakecp" --addr "127.0.0.1:$cp_port" --public-key-out "$dir/cp.pub" \
		--lifetime 10s --cache-floor 5s
	fakecp=$pid
	export TOKEND_PUBLIC_KEY_FILE="$dir/cp.pub" SESSION_ID="local-session-0001"
	;;
bearer)
	# TLS with a CA that fakecp generates, and the capability it accepts
	# in $dir/capability. Tokens live 30 s here (five minutes upstream).
	start fakecp "$dir/bin/fakecp" --auth bearer --addr "127.0.0.1:$cp_port" --lifetime 30s \
		--ca-out "$dir/ca.pem" --credential-out "$dir/capability"
	fakecp=$pid
	export TOKEND_AUTH=bearer AMBIENT_CP_CA_CERT_FILE="$dir/ca.pem" TOKEND_CREDENTIAL_FILE="$dir/capability"
	;;
esac
wait_log "$fakecp" fakecp "msg=serving"
url=${found##* url=}
export AMBIENT_CP_TOKEN_URL=${url%% *}

start app "$dir/bin/tokenwatch" --token-file "$dir/token"
wait_log "$pid" app "msg=watching"

start tokend env TOKEND_TOKEN_FILE="$dir/token" TOKEND_REFRESH_INTERVAL=30s \
	TOKEND_HEALTH_ADDR="127.0.0.1:$health_port" "$dir/bin/tokend" run
tokend=$pid
if [ "$health_port" -eq 0 ]; then
	wait_log "$tokend" tokend "health server listening"
	addr=${found##*addr=}
	health_port=${addr##*:}
	health_port=${health_port%% *}
fi
deadline=$((SECONDS + 120))
until [ "$(http_status "$health_port" /startupz || true)" = 200 ]; do
	kill -0 "$tokend" 2>/dev/null || died "$tokend" "before its first token"
	if [ "$SECONDS" -ge "$deadline" ]; then
		echo "local run: tokend has no token after 120 s; see its [tokend] lines above" >&2
		exit 1
	fi
	sleep 0.1
done
echo "tokend is running: token in $dir/token, probes and metrics on http://127.0.0.1:$health_port (/readyz, /metrics). Ctrl-C stops all three."

timer=()
ended=
if [ -n "${DEMO_SECONDS:-}" ]; then
	sleep "$DEMO_SECONDS" &
	timer=($!)
fi
# Ends on Ctrl-C (the trap), at the end of DEMO_SECONDS, or when one of
# the three exits on its own (an error).
wait -n -p ended "${pids[@]}" "${timer[@]}" || true
if [ "${#timer[@]}" -gt 0 ] && [ "$ended" = "${timer[0]}" ]; then
	echo "DEMO_SECONDS=$DEMO_SECONDS have passed."
	exit 0
fi
died "$ended" "early"
