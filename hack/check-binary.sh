#!/usr/bin/env bash
# check-binary.sh builds tokend exactly as the image does (hack/build.sh) and
# checks the result: a static ELF executable that runs with an empty
# environment and reports the stamped version. It prints the binary's size.
# It also checks that the Dockerfile still builds through hack/build.sh into
# a distroless static nonroot image. No Docker engine is needed.
#
# Usage: hack/check-binary.sh    (VERSION and COMMIT may be set, as for build.sh)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

fail() {
	echo "check-binary: FAIL: $*" >&2
	exit 1
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

export VERSION=${VERSION:-v0.0.0-check}
export COMMIT=${COMMIT:-0000000check}
bin=$tmp/tokend
OUT=$bin hack/build.sh

# Static: no interpreter, no shared libraries (read from the ELF headers, so
# neither `file` nor `ldd` is needed).
go run ./hack/elfcheck "$bin" || fail "the binary is not static"

# Built as the release build says.
info=$(go version -m "$bin")
for want in 'CGO_ENABLED=0' '-trimpath=true'; do
	grep -qF -- "$want" <<<"$info" || fail "go version -m lacks $want"
done

# Runs, with nothing from this machine's environment, and is stamped.
out=$(env -i "$bin" version) || fail "tokend version exited non-zero"
[[ "$out" == *"$VERSION"* && "$out" == *"$COMMIT"* ]] ||
	fail "tokend version printed \"$out\", want $VERSION and $COMMIT"
echo "runs: $out"

# The Dockerfile builds the same way and ships the binary on distroless.
# Read it as instructions: continuation lines joined, comments dropped.
instructions=$(sed -e '/^[[:space:]]*#/d' -e ':a' -e '/\\$/N; s/\\\n//; ta' Dockerfile)
grep -qE '^RUN .*hack/build\.sh' <<<"$instructions" || fail "Dockerfile does not RUN hack/build.sh"
[[ $(grep -E '^FROM ' <<<"$instructions" | tail -n1) =~ ^FROM\ gcr\.io/distroless/static-debian[0-9]+:nonroot$ ]] ||
	fail "Dockerfile's final stage is not distroless static nonroot"
grep -qxF 'USER 65532:65532' <<<"$instructions" || fail "Dockerfile does not set USER 65532:65532"
grep -qxF 'ENTRYPOINT ["/tokend"]' <<<"$instructions" || fail "Dockerfile's ENTRYPOINT is not exec form [\"/tokend\"]"

bytes=$(wc -c <"$bin")
awk -v b="$bytes" 'BEGIN { printf "size: %d bytes (%.2f MiB)\n", b, b / 1048576 }'
echo "check-binary: ok"
