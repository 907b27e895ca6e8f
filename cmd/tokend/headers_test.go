package main

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/ambient-code/tokend/internal/exchange"
)

// TestInitRefusesHugeResponseHeaders: an issuer that answers a good token
// behind 1 MiB of headers is refused at the header bound, retried until
// --init-timeout, and nothing is written.
func TestInitRefusesHugeResponseHeaders(t *testing.T) {
	h := newHarness(t)
	h.env["TOKEND_INIT_TIMEOUT"] = "2s"
	pad := strings.Repeat("x", 8<<10)
	for range 100 {
		h.iss.Push(func(w http.ResponseWriter, r *http.Request) {
			for i := range 128 {
				w.Header().Set("X-Padding-"+strconv.Itoa(i), pad)
			}
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"token":"token-behind-huge-headers"}` + "\n"))
		})
	}
	err := h.run(t.Context(), "init")
	if code := exitOf(err); code != 1 {
		t.Fatalf("init exit %d, want 1 (err %v)", code, err)
	}
	if bound := strconv.Itoa(exchange.MaxResponseHeaderBytes); !strings.Contains(h.stderr.String(), bound) {
		t.Errorf("log does not name the %s-byte bound:\n%s", bound, h.stderr.String())
	}
	if tok := h.token(); tok != "" {
		t.Error("init wrote a token from an answer with oversized headers")
	}
}
