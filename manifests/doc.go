// Package manifests holds the example Kubernetes manifests for tokend: a
// kustomize base and one overlay per way of running it (see README.md).
//
// It is a separate Go module so that the Kubernetes and kustomize libraries
// its tests need stay out of tokend's own module. The package has no code:
// its tests render every overlay with the kustomize Go API, decode every
// rendered object strictly into the Kubernetes API types, and check the
// rules the README states. Run them with
//
//	cd manifests && go test ./...
package manifests
