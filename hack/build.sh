#!/usr/bin/env bash
# build.sh builds tokend's release binary. It is the one definition of that
# build: the Dockerfile runs it, and so does CI (through check-binary.sh).
#
# The result is static (CGO_ENABLED=0), reproducible (-trimpath, no build id,
# no VCS stamp) and stripped (-s -w), with the version stamped by the linker.
#
# Environment:
#   VERSION  version to stamp; default: `git describe` in a git checkout, else "dev"
#   COMMIT   commit to stamp; default: the checkout's HEAD, else "unknown"
#   OUT      output path; default: bin/tokend
#   GOOS, GOARCH are passed through to go build, for cross builds.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

git_out() {
	[[ -e .git ]] && command -v git >/dev/null 2>&1 && git "$@" 2>/dev/null
}

version=${VERSION:-}
if [[ -z "$version" ]]; then
	version=$(git_out describe --tags --always --dirty) || version=dev
fi
commit=${COMMIT:-}
if [[ -z "$commit" ]]; then
	commit=$(git_out rev-parse --short=12 HEAD) || commit=unknown
fi
out=${OUT:-bin/tokend}
for v in "$version" "$commit"; do
	if [[ ! "$v" =~ ^[A-Za-z0-9._+-]+$ ]]; then
		echo "build.sh: version and commit may hold only letters, digits and ._+-: got \"$v\"" >&2
		exit 2
	fi
done

pkg=github.com/ambient-code/tokend/internal/version
ldflags="-s -w -buildid= -X ${pkg}.Version=${version} -X ${pkg}.Commit=${commit}"

CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags "$ldflags" -o "$out" ./cmd/tokend
echo "built $out (version $version, commit $commit)" >&2
