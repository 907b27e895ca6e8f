package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
)

// TestProcessRunRestoresTheTokenUnderAConnectionFlood: with a low
// descriptor limit, a flood of probe connections must not take the
// descriptors the token writes need. tokend runs under `ulimit -n 40`,
// 100 clients connect to its health port and stay, and the token file is
// removed: tokend must write it again. (Without the cap, whether the
// flood has taken every descriptor by the time of the write is a race, so
// this fails most runs, not all; TestServeCapsConnections in
// internal/health proves the cap deterministically.)
func TestProcessRunRestoresTheTokenUnderAConnectionFlood(t *testing.T) {
	h := newHarness(t)
	exchanges := observeExchanges(t, h)
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		t.Fatal(err)
	}
	defer fw.Close()
	if err := fw.Add(h.dir); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/bin/sh", "-c", `ulimit -n 40 && exec "$0" run`, binary(t))
	p, addr, lines, r := startPiped(t, h, cmd)
	defer r.Close()
	go func() { // keep the rest of the log, for failures
		for lines.Scan() {
			p.stderr.Write(append(lines.Bytes(), '\n'))
		}
	}()
	awaitExchange(t, p, exchanges, "start")
	// The issuer has answered; the token file follows.
	for !validJWT(h.token()) {
		select {
		case <-fw.Events:
		case err := <-fw.Errors:
			t.Fatal(err)
		case <-p.exited:
			t.Fatalf("tokend ended: %v\n%s", p.err, p.stderr.String())
		}
	}

	// The flood: 100 connections, each asking for /metrics and staying.
	answered := make(chan struct{}, 100)
	for range 100 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "GET /metrics HTTP/1.1\r\nHost: tokend\r\n\r\n")
		go func() {
			if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil {
				resp.Body.Close()
				answered <- struct{}{}
			}
		}()
	}
	for range 16 { // the flood holds tokend's connections now
		<-answered
	}

	want := h.token()
	if err := os.Remove(h.file); err != nil {
		t.Fatal(err)
	}
	for h.token() != want {
		select {
		case <-fw.Events:
		case err := <-fw.Errors:
			t.Fatal(err)
		case <-p.exited:
			err := p.err
			t.Fatalf("tokend ended: %v\n%s", err, p.stderr.String())
		case <-time.After(60 * time.Second): // bounds a hang only
			t.Fatalf("token file not written again under the flood\n%s", p.stderr.String())
		}
	}
}
