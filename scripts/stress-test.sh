#!/usr/bin/env bash
# Runs the test suite (or any command) several times while other work keeps
# every core busy, and reports the failures per test name: the way to find
# tests that pass on a quiet machine and fail on a loaded one.
#
#   scripts/stress-test.sh                      # scripts/test.sh, 3 runs, loaded
#   scripts/stress-test.sh -n 10                # 10 runs
#   scripts/stress-test.sh -n 5 -- go test -race -count=1 ./cmd/tokend
#   scripts/stress-test.sh -q -n 1              # quiet: no load (a reference)
#
# Options:
#   -n RUNS     how many runs (default 3, or STRESS_RUNS)
#   -c WORKERS  CPU-burning workers (default: the number of cores, or
#               STRESS_CPU)
#   -q          no load, for a reference wall time
#   -o DIR      keep each run's output in DIR (default: a new temporary
#               directory, named in the summary)
#
# The load is stress-ng --cpu WORKERS when stress-ng is installed. When it
# is not, the script installs it with apt-get if it runs as root and
# STRESS_INSTALL is not 0, and falls back to busy loops in bash otherwise.
# Only the load processes it started are stopped, by their ids.
#
# The summary lists each run's status and wall time, then each failing
# test (from "--- FAIL:" lines; a failing step without one is named by its
# first error line) with the number of runs it failed in. The exit status
# is 0 only when every run passed, so CI can run it as a step.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${STRESS_RUNS:-3}
workers=${STRESS_CPU:-$(nproc 2>/dev/null || echo 2)}
quiet=0
out=""
while getopts "n:c:qo:h" opt; do
	case $opt in
	n) runs=$OPTARG ;;
	c) workers=$OPTARG ;;
	q) quiet=1 ;;
	o) out=$OPTARG ;;
	*)
		sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
		exit 2
		;;
	esac
done
shift $((OPTIND - 1))
cmd=("$@")
[ ${#cmd[@]} -gt 0 ] || cmd=(scripts/test.sh)
case $runs in '' | *[!0-9]* | 0) echo "stress-test: -n must be a positive number, not '$runs'" >&2; exit 2 ;; esac
case $workers in '' | *[!0-9]* | 0) echo "stress-test: -c must be a positive number, not '$workers'" >&2; exit 2 ;; esac
if [ -z "$out" ]; then
	out=$(mktemp -d "${TMPDIR:-/tmp}/tokend-stress.XXXXXX")
fi
mkdir -p "$out"

load_pids=()
stop_load() {
	local pid
	for pid in "${load_pids[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${load_pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	load_pids=()
}
trap stop_load EXIT
trap 'exit 130' INT TERM

start_load() {
	if ! command -v stress-ng >/dev/null && [ "$(id -u)" = 0 ] && [ "${STRESS_INSTALL:-1}" != 0 ] && command -v apt-get >/dev/null; then
		echo "== installing stress-ng"
		(apt-get install -y -qq stress-ng >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq stress-ng >/dev/null 2>&1; }) ||
			echo "stress-test: could not install stress-ng; using busy loops" >&2
	fi
	if command -v stress-ng >/dev/null; then
		stress-ng --cpu "$workers" --timeout 0 --quiet &
		load_pids+=($!)
		echo "== load: stress-ng --cpu $workers (pid ${load_pids[*]})"
	else
		local i
		for ((i = 0; i < workers; i++)); do
			bash -c 'while :; do :; done' &
			load_pids+=($!)
		done
		echo "== load: $workers bash busy loops (pids ${load_pids[*]})"
	fi
}

[ "$quiet" = 1 ] || start_load
echo "== ${cmd[*]}: $runs runs, output in $out"

declare -A fails=()
passed=0
summary=()
for ((i = 1; i <= runs; i++)); do
	log="$out/run-$i.log"
	start=$(date +%s.%N)
	set +e
	"${cmd[@]}" >"$log" 2>&1
	status=$?
	set -e
	secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
	load=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo "?")
	if [ "$status" = 0 ]; then
		passed=$((passed + 1))
		line="run $i: ok in ${secs}s (load $load)"
	else
		# Test names, subtests included; else the first error line.
		names=$(grep -oE -- '--- FAIL: [^ ]+' "$log" | awk '{ print $3 }' | sort -u || true)
		if [ -z "$names" ]; then
			names="(no test: $(grep -m1 -E 'FAIL|panic|error|rror:' "$log" | cut -c1-100 | tr ' ' '_' || echo "exit_$status"))"
		fi
		for n in $names; do
			fails[$n]=$((${fails[$n]:-0} + 1))
		done
		line="run $i: FAIL (exit $status) in ${secs}s (load $load): $(echo $names | tr '\n' ' ')"
	fi
	summary+=("$line")
	echo "$line"
done

stop_load
echo
echo "== summary: ${cmd[*]}"
echo "$passed of $runs runs passed ($([ "$quiet" = 1 ] && echo "quiet" || echo "load: $workers workers")); logs in $out"
printf '%s\n' "${summary[@]}"
if [ ${#fails[@]} -gt 0 ]; then
	echo "failures per test (runs failed):"
	for n in "${!fails[@]}"; do
		printf '%4d  %s\n' "${fails[$n]}" "$n"
	done | sort -rn
	exit 1
fi
