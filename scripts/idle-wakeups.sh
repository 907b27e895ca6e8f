#!/usr/bin/env bash
# idle-wakeups.sh counts how often an idle `tokend run` wakes, against a
# reference peer measured in the same run: test/idlepeer, a Go program that
# sleeps on one timer for the refresh interval and rewrites a file, the
# least any Go sidecar pays (its wake-ups are the timer's and the Go
# runtime's own: sysmon once a minute, and a forced collection every two
# minutes in a program that has ever collected). A wake-up is a context
# switch of any thread of the process: the sum of voluntary_ctxt_switches
# and nonvoluntary_ctxt_switches over /proc/PID/task/*/status, read once
# both have started and again MINUTES later. Both run side by side against
# test/fakecp on loopback.
#
# By default the window holds no refresh (tokens of 2 h and an interval as
# long: a first token is refreshed no sooner than a quarter of its life
# after it arrives, here 30 minutes), so it measures the sleep between
# refreshes. INTERVAL=5m LIFETIME=1h measures a sidecar
# that also refreshes on the default interval; the exchanges and writes in
# the window are printed either way.
#
# Usage: scripts/idle-wakeups.sh   (MINUTES=10, INTERVAL=2h, LIFETIME=2h,
#                                    SETTLE_SECONDS=150;
#                                    KEEP=1 keeps the logs and files;
#                                    TOKEND_BIN=path measures that binary
#                                    instead of building this tree's)
# It prints wake-ups per minute for each, and tokend's as a ratio of the
# peer's. Linux only (it reads /proc). Ports are chosen by the kernel.
set -euo pipefail
cd "$(dirname "$0")/.."

minutes=${MINUTES:-10}
interval=${INTERVAL:-2h}
lifetime=${LIFETIME:-2h}
# The window opens 150 s after the start, once the first exchange is over:
# its keep-alive connection closes 30 s after it, and the Go runtime's
# monitor thread (sysmon), which an exchange's system calls keep busy,
# spins some 60 times at its next wake before it sleeps a minute at a
# time again.
settle=${SETTLE_SECONDS:-150}

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

echo "building tokend (release build), fakecp and idlepeer ..." >&2
if [[ -n "${TOKEND_BIN:-}" ]]; then
	cp "$TOKEND_BIN" "$tmp/tokend"
else
	OUT=$tmp/tokend hack/build.sh >/dev/null
fi
go build -o "$tmp/" ./test/fakecp ./test/idlepeer
mkdir "$tmp/tokend-dir" "$tmp/peer-dir"

"$tmp/fakecp" --addr 127.0.0.1:0 --public-key-out "$tmp/cp.pub" --lifetime "$lifetime" 2>"$tmp/fakecp.log" &
pids+=($!)
url=
for _ in $(seq 300); do
	url=$(sed -n 's/.* url=\(http[^ ]*\).*/\1/p' "$tmp/fakecp.log" | head -n1)
	[[ -n "$url" ]] && break
	kill -0 "${pids[0]}" 2>/dev/null || break
	sleep 0.1
done
[[ -n "$url" ]] || { echo "fakecp did not start:" >&2; cat "$tmp/fakecp.log" >&2; exit 1; }

env -i AMBIENT_CP_TOKEN_URL="$url" TOKEND_PUBLIC_KEY_FILE="$tmp/cp.pub" \
	SESSION_ID=idle-wakeups-0001 TOKEND_TOKEN_FILE="$tmp/tokend-dir/token" \
	TOKEND_HEALTH_ADDR=127.0.0.1:0 TOKEND_REFRESH_INTERVAL="$interval" \
	LOG_FORMAT=json "$tmp/tokend" run 2>"$tmp/tokend.log" &
tokend=$!
pids+=("$tokend")
"$tmp/idlepeer" --interval "$interval" --file "$tmp/peer-dir/token" 2>"$tmp/idlepeer.log" &
peer=$!
pids+=("$peer")

for _ in $(seq 300); do
	[[ -s "$tmp/tokend-dir/token" ]] && break
	kill -0 "$tokend" 2>/dev/null || break
	sleep 0.1
done
[[ -s "$tmp/tokend-dir/token" ]] || { echo "tokend wrote no token:" >&2; cat "$tmp/tokend.log" >&2; exit 1; }

# switches PID prints the context switches of all of PID's threads so far.
switches() {
	cat /proc/"$1"/task/*/status 2>/dev/null |
		awk '/^(non)?voluntary_ctxt_switches:/ { n += $2 } END { print n + 0 }'
}
# threads PID prints how many threads PID has.
threads() { ls /proc/"$1"/task | wc -l; }

# exchanges prints how many token requests fakecp has answered; writes
# how many times the peer has written its file.
exchanges() { grep -c 'msg=request' "$tmp/fakecp.log" || true; }
writes() { cat "$tmp/peer-dir/token" 2>/dev/null || echo 0; }

sleep "$settle"
t0=$(switches "$tokend") p0=$(switches "$peer") e0=$(exchanges) w0=$(writes)
echo "measuring $minutes min (interval $interval, tokens of $lifetime) ..." >&2
sleep $((minutes * 60))
t1=$(switches "$tokend") p1=$(switches "$peer") e1=$(exchanges) w1=$(writes)
for p in "$tokend" "$peer"; do
	kill -0 "$p" 2>/dev/null || { echo "process $p exited during the measurement" >&2; exit 1; }
done

awk -v t="$((t1 - t0))" -v p="$((p1 - p0))" -v m="$minutes" \
	-v tt="$(threads "$tokend")" -v pt="$(threads "$peer")" \
	-v te="$((e1 - e0))" -v pw="$((w1 - w0))" 'BEGIN {
	printf "tokend run: %d wake-ups in %d min = %.1f/min (%d threads, %d exchanges)\n", t, m, t / m, tt, te
	printf "idlepeer:   %d wake-ups in %d min = %.1f/min (%d threads, %d writes)\n", p, m, p / m, pt, pw
	if (p > 0) printf "ratio tokend/idlepeer: %.2f\n", t / p
}'
