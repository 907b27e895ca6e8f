package daemon_test

import (
	"context"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ambient-code/tokend/internal/daemon"
)

// TestProxySocketFollowsFileMode: the credential proxy's Unix socket lets
// connect only whoever may read the token file (its mode, with write where
// read is granted), so a token file of 0600 keeps the pod's group from
// using the token through the proxy.
func TestProxySocketFollowsFileMode(t *testing.T) {
	cfg, dir := encryptedWorld(t)
	sock := filepath.Join(dir, "proxy.sock")
	cfg.FileMode = 0o600
	cfg.Proxy = daemon.Proxy{Listen: "unix:" + sock, Upstream: &url.URL{Scheme: "http", Host: "127.0.0.1:1"}}
	log := &events{ch: make(chan string, 256)}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- daemon.Run(ctx, cfg, daemon.Deps{Logger: slog.New(log)}) }()
	await(t, log.ch, "the proxy to listen", func(l string) bool { return strings.HasPrefix(l, "credential proxy listening") })
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("proxy socket mode %04o with token file mode 0600, want 0600", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
