#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, vet, the release build
# check, the podspec module, the manifests, the e2e's static-pod module,
# short fuzzing, then every Go test under the race detector (last, so that
# its summary ends the output).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== gofmt"
unformatted=$(gofmt -l cmd internal tokenfile hack manifests podspec test examples 2>/dev/null || true)
if [ -n "$unformatted" ]; then
	echo "gofmt would change: $unformatted" >&2
	exit 1
fi

echo "== go vet"
go vet ./...

echo "== release binary (built as the Dockerfile builds it)"
hack/check-binary.sh

echo "== podspec (its own module, for k8s.io/api)"
(cd podspec && go vet ./... && go test -race -count=1 ./...)

echo "== manifests (kustomize render, strict decode, pod rules, podspec agrees)"
(cd manifests && go vet ./... && go test -count=1 ./...)

echo "== test/e2e/staticpod (its own module: the e2e's static pods from the manifests)"
(cd test/e2e/staticpod && go vet ./... && go test -race -count=1 ./...)

# Short fuzzing: a count of executions per target, which a busy machine
# only slows down (a duration can fail with "context deadline exceeded";
# see scripts/fuzz.sh); FUZZ_SECONDS=N asks for N seconds instead. It
# starts from the seed corpora alone (failures are kept in testdata/fuzz,
# not in the cache), through a fuzz cache of its own that is removed
# afterwards: the machine's shared fuzz cache is left alone.
fuzztime=${FUZZ_SECONDS:-${FUZZ_EXECS:-10000}x}
echo "== fuzz targets, $fuzztime each"
fuzzcache=$(mktemp -d "${TMPDIR:-/tmp}/tokend-fuzzcache.XXXXXX")
trap 'rm -rf "$fuzzcache"' EXIT
FUZZ_CACHE_DIR=$fuzzcache scripts/fuzz.sh "$fuzztime"

# tokenfile is imported by other modules: build and test it with the oldest
# Go that go.mod's go line admits (the toolchain is fetched as a module).
oldest=go$(sed -n 's/^go //p' go.mod)
echo "== tokenfile with $oldest"
GOTOOLCHAIN=$oldest go vet ./tokenfile ./examples/tokenwatch
GOTOOLCHAIN=$oldest go test -count=1 ./tokenfile ./examples/tokenwatch

echo "== go test -race"
go test -race -count=1 ./...
