package exchange_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/ambient-code/tokend/internal/exchange"
	"github.com/ambient-code/tokend/test/fakeissuer"
	"github.com/ambient-code/tokend/test/testkit"
)

// TestResponseHeadersAreBounded: an issuer (or something in front of it)
// that sends megabytes of headers is refused once the headers pass
// exchange.MaxResponseHeaderBytes, as an oversized body is, and no token
// comes back.
func TestResponseHeadersAreBounded(t *testing.T) {
	iss := &fakeissuer.Issuer{Key: testkit.RSAKey()}
	srv := httptest.NewServer(iss)
	defer srv.Close()
	huge := strings.Repeat("x", 8<<10)
	iss.Push(func(w http.ResponseWriter, r *http.Request) {
		// 1 MiB of headers in lines of 8 KiB, ahead of a good answer.
		for i := range 128 {
			w.Header().Set("X-Padding-"+strconv.Itoa(i), huge)
		}
		iss.ServeHTTP(w, r)
	})
	ex := newSession(t, srv.URL)
	tok, err := ex.Exchange(t.Context())
	if err == nil {
		t.Fatal("exchange accepted 1 MiB of response headers")
	}
	if tok.Value.Reveal() != "" {
		t.Error("a token came back with the error")
	}
	bound := strconv.Itoa(exchange.MaxResponseHeaderBytes)
	if !strings.Contains(err.Error(), bound) {
		t.Errorf("error %q does not name the bound of %s bytes", err, bound)
	}
	if !exchange.Retryable(err) {
		t.Error("oversized headers are classified permanent; a passing proxy page should be retried")
	}
	// Normal service resumes: the bound does not refuse ordinary answers.
	if _, err := ex.Exchange(t.Context()); err != nil {
		t.Fatalf("second exchange: %v", err)
	}
	var se *exchange.StatusError
	if errors.As(err, &se) {
		t.Errorf("oversized headers reported as status %d", se.StatusCode)
	}
}
