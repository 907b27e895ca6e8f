package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/ambient-code/tokend/test/testkit"
)

// TestConnectionCap: held client connections cannot pile up: with the
// defaults, past MaxConcurrent+32 open connections each new one closes the
// idlest (idle after a request, or never having sent one) and is served.
func TestConnectionCap(t *testing.T) {
	up, _ := echoUpstream(t)
	src := newSource()
	src.set("tok-cap", noExpiry)
	r := start(t, up.URL, src, nil, nil)
	dial := func() net.Conn {
		c, err := net.Dial("tcp", r.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	get := func(c net.Conn) {
		t.Helper()
		if _, err := io.WriteString(c, "GET /held HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	const max = DefaultMaxConcurrent + 32
	held := make([]net.Conn, max)
	// The first never sends a request, so it is the idlest whatever the
	// scheduling: it was accepted first (accepts keep the dial order). A
	// connection idle after a request is ordered by the server's state
	// hook, which may run after this test has read the answer and dialled
	// again (internal/listen's TestCapClosesIdlest waits for the hook).
	for i := range held {
		held[i] = dial()
		if i%2 == 1 {
			get(held[i])
		}
	}
	const extra = 16
	for range extra {
		get(dial())
	}
	closed := 0
	for _, c := range held {
		if testkit.ClosedByPeer(t, c) {
			closed++
		}
	}
	if closed != extra {
		t.Errorf("%d of %d held connections were closed for %d new ones, want %d", closed, max, extra, extra)
	}
	if !testkit.ClosedByPeer(t, held[0]) || testkit.ClosedByPeer(t, held[max-1]) {
		t.Error("the connections closed were not the idlest")
	}
}

// TestHeaderBounds: by default a header over 32 KiB (plus net/http's 4 KiB
// of slack), or of more than 100 fields, gets 431 and never reaches the
// upstream.
func TestHeaderBounds(t *testing.T) {
	up, rec := echoUpstream(t)
	src := newSource()
	src.set("tok-hdr", noExpiry)
	r := start(t, up.URL, src, nil, nil)
	var fields strings.Builder
	for i := range 101 {
		fmt.Fprintf(&fields, "X-F%d: v\r\n", i)
	}
	for name, req := range map[string]string{
		"40 KiB":     "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 40<<10) + "\r\n\r\n",
		"101 fields": "GET / HTTP/1.1\r\nHost: x\r\n" + fields.String() + "\r\n",
	} {
		if got := rawStatus(t, r.addr, req); got != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("%s: status %d, want 431", name, got)
		}
	}
	if n := len(rec.all()); n != 0 {
		t.Errorf("upstream got %d requests", n)
	}
}
