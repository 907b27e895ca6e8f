#!/usr/bin/env bash
# Runs every Go fuzz target in the module, one after the other, for the
# given time each (default 5s), starting from the seed corpora in each
# package's testdata/fuzz/<FuzzName>/.
#
#   scripts/fuzz.sh          # 5s per target (CI)
#   scripts/fuzz.sh 300      # 5 minutes per target
#   FUZZ_PARALLEL=1 scripts/fuzz.sh 300   # one fuzzing worker
#   FUZZ_CACHE_DIR=$(mktemp -d) scripts/fuzz.sh   # a fresh fuzz cache
#   scripts/fuzz.sh 5000x    # 5000 executions per target, however long
#
# A count ("Nx") has no deadline: go1.26's fuzzing coordinator can report
# its own -fuzztime deadline as a failure ("context deadline exceeded", no
# failing input; go.dev/issue/75804) when the machine is busy, so CI-like
# runs use a count.
#
# FUZZ_CACHE_DIR, when set, holds the inputs fuzzing finds interesting
# (one subdirectory per package) instead of the Go build cache's fuzz
# cache, which other runs and other modules share: an empty directory
# makes a run start from the seed corpora alone.
#
# A failing input is written to testdata/fuzz/<FuzzName>/ by go test; the
# script stops at the first failure with go test's exit status. The last
# lines per target give its executions and new interesting inputs.
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-5}
case $secs in
*x) fuzztime=$secs ;;
*) fuzztime=${secs}s ;;
esac
parallel=()
[ -n "${FUZZ_PARALLEL:-}" ] && parallel=(-parallel "$FUZZ_PARALLEL")

# "go test -list" prints each package's matching names, then its "ok" line.
list=$(go test -list '^Fuzz' ./...)
targets=$(awk '/^Fuzz/ { names[n++] = $1; next } /^ok/ { for (i = 0; i < n; i++) print $2, names[i]; n = 0 }' <<<"$list")

count=0
while read -r pkg fuzz; do
	[ -n "$fuzz" ] || continue
	echo "== $pkg $fuzz ($fuzztime)"
	set +e
	cachedir=()
	# go test passes its own -test.fuzzcachedir first; the last one wins.
	[ -n "${FUZZ_CACHE_DIR:-}" ] && cachedir=(-args "-test.fuzzcachedir=$FUZZ_CACHE_DIR/$pkg")
	go test -run '^$' -fuzz "^${fuzz}\$" -fuzztime "$fuzztime" "${parallel[@]}" "$pkg" "${cachedir[@]}" >/tmp/fuzz.$$.log 2>&1
	status=$?
	set -e
	grep -E '^(fuzz: elapsed|--- FAIL|    |ok|FAIL|PASS)' /tmp/fuzz.$$.log | tail -n 4
	rm -f /tmp/fuzz.$$.log
	if [ "$status" -ne 0 ]; then
		echo "fuzz: $fuzz failed" >&2
		exit "$status"
	fi
	count=$((count + 1))
done <<<"$targets"
[ "$count" -gt 0 ] || { echo "fuzz: no targets found" >&2; exit 1; }
echo "fuzzed $count targets for $fuzztime each"
