#!/usr/bin/env bash
# measure.sh measures tokend's footprint as a sidecar, for sizing the
# resource requests and limits in manifests/. It runs the release build of
# `tokend run` against test/fakecp (a 4096-bit key, as the control plane uses,
# and 20s tokens, so tokend refreshes every few seconds: busier than real)
# on loopback, probes /livez and /readyz and scrapes /metrics every second
# (busier than a kubelet and Prometheus), and reports resident memory and
# average CPU. Everything stops by itself after DURATION seconds.
#
# Usage: hack/measure.sh    (DURATION=60, CP_PORT=18480, HEALTH_PORT=18481;
#                            KEEP=1 keeps the logs and token directory)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

duration=${DURATION:-60}
cp_port=${CP_PORT:-18480}
health_port=${HEALTH_PORT:-18481}

tmp=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	if [[ -n "${KEEP:-}" ]]; then
		echo "kept $tmp" >&2
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT

OUT=$tmp/tokend hack/build.sh
go build -o "$tmp/fakecp" ./test/fakecp
mkdir "$tmp/token"

"$tmp/fakecp" --addr "127.0.0.1:$cp_port" --public-key-out "$tmp/cp.pub" \
	--key-bits 4096 --lifetime 20s --cache-floor 5s 2>"$tmp/fakecp.log" &
pids+=($!)
for _ in $(seq 100); do [[ -s "$tmp/cp.pub" ]] && break; sleep 0.1; done
[[ -s "$tmp/cp.pub" ]] || { cat "$tmp/fakecp.log" >&2; exit 1; }

env -i AMBIENT_CP_TOKEN_URL="http://127.0.0.1:$cp_port/token" \
	TOKEND_PUBLIC_KEY_FILE="$tmp/cp.pub" SESSION_ID=measure-session-0001 \
	TOKEND_TOKEN_FILE="$tmp/token/token" TOKEND_HEALTH_ADDR="127.0.0.1:$health_port" \
	LOG_FORMAT=json "$tmp/tokend" run 2>"$tmp/tokend.log" &
pid=$!
pids+=("$pid")
for _ in $(seq 100); do [[ -s "$tmp/token/token" ]] && break; sleep 0.1; done

probe() {
	command -v curl >/dev/null || return 0
	local path
	for path in livez readyz metrics; do
		curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$health_port/$path" || true
	done
}

max_rss=0
for _ in $(seq "$duration"); do
	probe
	rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")
	((rss > max_rss)) && max_rss=$rss
	sleep 1
done

[[ -s "$tmp/token/token" ]] || { cat "$tmp/tokend.log" >&2; echo "measure: no token written" >&2; exit 1; }
kill -0 "$pid" 2>/dev/null || { cat "$tmp/tokend.log" >&2; echo "measure: tokend exited" >&2; exit 1; }
hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status")
anon=$(awk '/^RssAnon:/ { print $2 }' "/proc/$pid/status")
ticks=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
exchanges=$(grep -c '"path":"/token"\|path=/token' "$tmp/fakecp.log" || true)
awk -v rss="$rss" -v max="$max_rss" -v hwm="$hwm" -v anon="$anon" -v t="$ticks" -v hz="$(getconf CLK_TCK)" -v d="$duration" -v n="$exchanges" 'BEGIN {
	printf "tokend run, %ds, %d exchanges\n", d, n
	printf "resident memory: now %.1f MiB, sampled peak %.1f MiB, high-water mark %.1f MiB\n", rss / 1024, max / 1024, hwm / 1024
	printf "of which anonymous (heap, stacks): %.1f MiB; the rest is the mapped binary\n", anon / 1024
	printf "cpu: %.2f s in all, %.1f millicores on average\n", t / hz, 1000 * t / hz / d
}'
