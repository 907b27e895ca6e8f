package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"testing"
)

// TestProcessRunSurvivesAClosedStderr: the reader of tokend's stderr (a
// log shipper, a `kubectl logs -f` pipe) goes away; the next log lines
// must fail quietly, not end the sidecar with SIGPIPE.
func TestProcessRunSurvivesAClosedStderr(t *testing.T) {
	h := newHarness(t)
	h.env["LOG_FORMAT"] = "json"
	exchanges := observeExchanges(t, h)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary(t), "run")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range h.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = io.Discard, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close() // the child holds the only writing end
	p := watchProcess(t, cmd, nil)

	// Learn the health address from the log, then stop reading for good.
	var addr string
	lines := bufio.NewScanner(r)
	for addr == "" && lines.Scan() {
		var line struct{ Msg, Addr string }
		if json.Unmarshal(lines.Bytes(), &line) == nil && line.Msg == "health server listening" {
			addr = line.Addr
		}
	}
	if addr == "" {
		t.Fatalf("no health address logged (%v)", lines.Err())
	}
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
