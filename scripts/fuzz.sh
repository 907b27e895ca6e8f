#!/usr/bin/env bash
# Runs every Go fuzz target in the module, one after the other, for the
# given time each (default 5s), starting from the seed corpora in each
# package's testdata/fuzz/<FuzzName>/.
#
#   scripts/fuzz.sh          # 5s per target (CI)
#   scripts/fuzz.sh 300      # 5 minutes per target
#   FUZZ_PARALLEL=1 scripts/fuzz.sh 300   # one fuzzing worker
#
# A failing input is written to testdata/fuzz/<FuzzName>/ by go test; the
# script stops at the first failure with go test's exit status. The last
# line per target gives its executions and new interesting inputs.
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-5}
parallel=()
[ -n "${FUZZ_PARALLEL:-}" ] && parallel=(-parallel "$FUZZ_PARALLEL")

targets=0
for pkg in $(go list ./...); do
	for fuzz in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
		echo "== $pkg $fuzz (${secs}s)"
		go test -run '^$' -fuzz "^${fuzz}\$" -fuzztime "${secs}s" "${parallel[@]}" "$pkg" 2>&1 |
			grep -E '^(fuzz: elapsed|--- FAIL|    |ok|FAIL|PASS)' | tail -n 4
		status=${PIPESTATUS[0]}
		if [ "$status" -ne 0 ]; then
			echo "fuzz: $fuzz failed" >&2
			exit "$status"
		fi
		targets=$((targets + 1))
	done
done
echo "fuzzed $targets targets for ${secs}s each"
