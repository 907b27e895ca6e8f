#!/usr/bin/env bash
# image.sh builds tokend's container image with neither Docker nor a
# registry: the release binary, built by hack/build.sh exactly as the
# Dockerfile builds it, in an OCI image archive written by hack/ociimage,
# with the Dockerfile's user (65532:65532), entrypoint (/tokend) and command
# (run), and the CA certificates distroless carries.
#
#   hack/image.sh                                   # writes tokend-image.tar
#   ctr -n k8s.io images import tokend-image.tar    # a containerd node (kind, k3s)
#   skopeo copy oci-archive:tokend-image.tar docker://REGISTRY/tokend:TAG
#
# Environment:
#   OUT        the archive to write; default tokend-image.tar (in the
#              current directory)
#   IMAGE      the image's name; default ghcr.io/ambient-code/tokend:VERSION
#   VERSION, COMMIT, GOOS, GOARCH   as for hack/build.sh (GOARCH=arm64 for an arm64 image)
#   BINARY     a tokend binary built already, instead of building one
#   CA_BUNDLE  the CA certificates for /etc/ssl/certs/ca-certificates.crt;
#              default: the build host's, where Debian, Ubuntu and Alpine
#              keep them; "none" leaves them out (tokend then trusts only
#              the CA files it is given)
#   SOURCE_DATE_EPOCH  the image's time stamp; default: the commit's time
set -euo pipefail

# Paths given relative to the caller's directory stay so.
abs() { if [[ -z "$1" || "$1" == /* ]]; then echo "$1"; else echo "$PWD/$1"; fi; }
out=$(abs "${OUT:-tokend-image.tar}")
bin=$(abs "${BINARY:-}")
ca=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
[[ "$ca" == none ]] || ca=$(abs "$ca")

cd "$(dirname "${BASH_SOURCE[0]}")/.."

git_out() {
	[[ -e .git ]] && command -v git >/dev/null 2>&1 && git "$@" 2>/dev/null
}

if [[ -z "${VERSION:-}" ]]; then
	VERSION=$(git_out describe --tags --always --dirty) || VERSION=dev
fi
export VERSION
if [[ -z "${SOURCE_DATE_EPOCH:-}" ]]; then
	SOURCE_DATE_EPOCH=$(git_out log -1 --format=%ct) || SOURCE_DATE_EPOCH=0
fi
export SOURCE_DATE_EPOCH
image=${IMAGE:-ghcr.io/ambient-code/tokend:${VERSION//+/_}}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [[ -z "$bin" ]]; then
	bin=$tmp/tokend
	OUT=$bin hack/build.sh
fi

args=(-o "$out" -name "$image" -add "$bin:/tokend" -entrypoint /tokend -cmd run -user 65532:65532)
if [[ "$ca" != none ]]; then
	if [[ ! -f "$ca" ]]; then
		echo "image.sh: no CA bundle at $ca: set CA_BUNDLE to the build host's CA certificates file, or CA_BUNDLE=none" >&2
		exit 1
	fi
	args+=(-add "$ca:/etc/ssl/certs/ca-certificates.crt" -env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt)
fi
# Built for the build host: GOOS and GOARCH are the image's, not the tool's.
GOOS= GOARCH= go run ./hack/ociimage "${args[@]}"
