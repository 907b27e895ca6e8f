#!/usr/bin/env bash
# build-kubelet.sh builds a standalone kubelet from the Go module proxy, for
# scripts/e2e-kubelet.sh, and prints the binary's path. Kubernetes ships no
# kubelet as a Go module of its own: a scratch module requires
# k8s.io/kubernetes at the release and replaces each of its staging modules
# (k8s.io/api, k8s.io/client-go, ...) with the matching v0 release, as
# kubernetes' own go.mod does with its ./staging directories.
#
# The result is cached: a second run with the same release finds the binary,
# checks its --version, and returns at once. From a cold module cache the
# build takes 35 to 45 minutes on two busy cores and fetches about 420 MB
# of modules; the binary is about 90 MiB.
#
#   hack/build-kubelet.sh          # prints .../kubelet-v1.37.2
#
# Environment:
#   KUBELET_VERSION  the Kubernetes release, vMAJOR.MINOR.PATCH; default
#                    v1.37.2 (native sidecars are GA from v1.33; the Go
#                    release it needs is named in its go.mod)
#   CACHE_DIR        where the binary (kubelet-VERSION) and its scratch
#                    module (kubelet-build-VERSION) are kept; default
#                    $XDG_CACHE_HOME/tokend-e2e, else ~/.cache/tokend-e2e
set -euo pipefail

version=${KUBELET_VERSION:-v1.37.2}
cache=${CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tokend-e2e}
if [[ ! "$version" =~ ^v1\.([0-9]+)\.[0-9]+$ ]]; then
	echo "build-kubelet.sh: KUBELET_VERSION=$version is not a release: set it to vMAJOR.MINOR.PATCH, e.g. v1.37.2" >&2
	exit 2
fi
staging=v0.${version#v1.}
bin=$cache/kubelet-$version
mod=$cache/kubelet-build-$version

if [[ -x "$bin" ]]; then
	got=$("$bin" --version 2>/dev/null || true)
	if [[ "$got" == "Kubernetes $version" ]]; then
		echo "$bin"
		exit 0
	fi
	echo "build-kubelet.sh: $bin says \"$got\", not Kubernetes $version: building it again" >&2
fi

mkdir -p "$mod"
cd "$mod"
echo "build-kubelet.sh: building kubelet $version in $mod (35-45 min from a cold module cache)" >&2

# The staging modules are those kubernetes' go.mod replaces with a
# ./staging directory; each becomes the v0 release of the same minor.
gomod=$(go mod download -json "k8s.io/kubernetes@$version" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')
if [[ ! -f "$gomod" ]]; then
	echo "build-kubelet.sh: the module proxy gave no go.mod for k8s.io/kubernetes@$version: check the release name and that GOPROXY reaches the proxy" >&2
	exit 1
fi
mapfile -t mods < <(sed -n 's#^[[:space:]]*\(k8s\.io/[a-z0-9-]*\) => \./staging/.*#\1#p' "$gomod" | sort -u)
if ((${#mods[@]} == 0)); then
	echo "build-kubelet.sh: no staging modules found in $gomod: this release's go.mod has a layout this script does not know" >&2
	exit 1
fi
goline=$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$gomod")

{
	echo "module kubeletbuild"
	echo
	echo "go $goline"
	echo
	echo "require k8s.io/kubernetes $version"
	echo
	echo "replace ("
	for m in "${mods[@]}"; do
		echo "	$m => $m $staging"
	done
	echo ")"
} >go.mod
# A file that imports the command, so that tidy keeps what it needs.
printf '//go:build tools\n\npackage kubeletbuild\n\nimport _ "k8s.io/kubernetes/cmd/kubelet"\n' >tools.go

GOFLAGS=-mod=mod go mod tidy
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$bin.tmp" k8s.io/kubernetes/cmd/kubelet
mv "$bin.tmp" "$bin"
got=$("$bin" --version)
if [[ "$got" != "Kubernetes $version" ]]; then
	echo "build-kubelet.sh: the built kubelet says \"$got\", not Kubernetes $version" >&2
	exit 1
fi
echo "$bin"
