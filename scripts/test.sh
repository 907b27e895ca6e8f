#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, vet, the release build
# check, the manifests, short fuzzing, then every Go test under the race
# detector (last, so that its summary ends the output).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== gofmt"
unformatted=$(gofmt -l cmd internal tokenfile hack manifests 2>/dev/null || true)
if [ -n "$unformatted" ]; then
	echo "gofmt would change: $unformatted" >&2
	exit 1
fi

echo "== go vet"
go vet ./...

echo "== release binary (built as the Dockerfile builds it)"
hack/check-binary.sh

echo "== manifests (kustomize render, strict decode, pod rules)"
(cd manifests && go vet ./... && go test -count=1 ./...)

echo "== fuzz targets, ${FUZZ_SECONDS:-5}s each"
# A short run starts from the seed corpora alone: the inputs that long runs
# cached take longer to replay than a few seconds allow ("context deadline
# exceeded"), and failures are kept in testdata/fuzz, not in the cache. So
# it fuzzes with a fuzz cache of its own, removed afterwards; the machine's
# shared fuzz cache is left alone.
fuzzcache=$(mktemp -d "${TMPDIR:-/tmp}/tokend-fuzzcache.XXXXXX")
trap 'rm -rf "$fuzzcache"' EXIT
FUZZ_CACHE_DIR=$fuzzcache scripts/fuzz.sh "${FUZZ_SECONDS:-5}"

echo "== go test -race"
go test -race -count=1 ./...
