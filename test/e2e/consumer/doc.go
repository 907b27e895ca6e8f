// Package consumer holds the programs of the end-to-end test's workload
// images, which scripts/e2e-kubelet.sh puts into images named as the
// manifests' examples name theirs: reader.sh (registry.example/runner:2.3
// and registry.example/mcp-server:0.9), sidecar.sh
// (registry.example/git-credentials:1.4) and git.sh
// (registry.example/git:2.45). They are shell scripts for busybox; the
// package's test runs them with the system's sh.
package consumer
