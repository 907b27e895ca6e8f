package main

import (
	"net/http"
	"os/exec"
	"syscall"
	"testing"
)

// TestProcessRunSurvivesAClosedStderr: the reader of tokend's stderr (a
// log shipper, a `kubectl logs -f` pipe) goes away; the next log lines
// must fail quietly, not end the sidecar with SIGPIPE.
func TestProcessRunSurvivesAClosedStderr(t *testing.T) {
	h := newHarness(t)
	exchanges := observeExchanges(t, h)
	// Learn the health address from the log, then stop reading for good.
	cmd := exec.Command(binary(t), "run")
	p, addr, _, r := startPiped(t, h, cmd)
	awaitExchange(t, p, exchanges, "start")
	r.Close()

	// SIGHUP makes log lines (the signal, the exchange) on the broken pipe.
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	awaitExchange(t, p, exchanges, "after stderr closed")
	resp, err := http.Get("http://" + addr + "/livez")
	if err != nil {
		t.Fatalf("health server gone after stderr closed: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/livez = %d", resp.StatusCode)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.exit(t); code != 0 {
		t.Fatalf("exit %d after SIGTERM with stderr closed, want 0 (%v)", code, cmd.ProcessState)
	}
}
