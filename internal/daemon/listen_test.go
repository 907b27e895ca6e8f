package daemon_test

import (
	"crypto/rsa"
	"errors"
	"log/slog"
	"net"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/ambient-code/tokend/internal/daemon"
	"github.com/ambient-code/tokend/test/testkit"
	"github.com/ambient-code/tokend/test/testkit/daemonevents"
)

// TestRunTakenHealthPortStartsNothing: when the health port is taken, Run
// returns at once with an error naming it, and leaves no goroutine of its
// own running (it once left the directory watch behind).
func TestRunTakenHealthPortStartsNothing(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cfg := testConfig("http://127.0.0.1:1/token", testkit.RSAKey().Public().(*rsa.PublicKey), "taken-port-session-0001", filepath.Join(t.TempDir(), "token"))
	cfg.HealthAddr = taken.Addr().String()
	var events testkit.Log[daemonevents.Event]
	before := ownGoroutines() // an earlier test's may still be ending
	err = daemon.Run(t.Context(), cfg, daemonevents.Observe(daemon.Deps{Logger: slog.New(slog.DiscardHandler)}, events.Add))
	if !errors.Is(err, syscall.EADDRINUSE) || !strings.Contains(err.Error(), "health server") {
		t.Fatalf("Run: %v, want a health server error for the taken port", err)
	}
	if got := events.All(); len(got) != 0 {
		t.Errorf("events %v, want none: nothing may start", got)
	}
	for id, stack := range ownGoroutines() {
		if _, ok := before[id]; !ok {
			t.Fatalf("Run returned and left a goroutine running:\n%s", stack)
		}
	}
}

// ownGoroutines returns the stacks of the goroutines that run daemon code
// (or its errgroup and directory watch), by goroutine id.
func ownGoroutines() map[string]string {
	buf := make([]byte, 1<<20)
	own := map[string]string{}
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		id, _, _ := strings.Cut(strings.TrimPrefix(g, "goroutine "), " ")
		for _, mark := range []string{"errgroup.(*Group).Go", "tokend/internal/daemon.Run", "tokend/internal/daemon.(", "fsnotify"} {
			if strings.Contains(g, mark) {
				own[id] = g
			}
		}
	}
	return own
}
