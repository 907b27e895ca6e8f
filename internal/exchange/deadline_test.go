package exchange_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ambient-code/tokend/internal/exchange"
	"github.com/ambient-code/tokend/test/fakeissuer"
	"github.com/ambient-code/tokend/test/testkit"
)

// The tests here judge deadlines and pauses, so they run in a synctest
// bubble on an in-memory network: the clock is exact and a loaded machine
// changes nothing.

// hang never answers: it reads the request (so that the server notices the
// client hanging up), waits for that, then drops the connection without a
// response, as a stuck server does. (Returning instead would send an empty
// 200, which a client may still read as it gives up.)
func hang(_ http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	<-r.Context().Done()
	panic(http.ErrAbortHandler)
}

// TestEncryptedSessionTimingFaults: a body that trickles past the
// per-request timeout fails at the timeout exactly, and a Retry-After in
// seconds or as an HTTP date becomes the delay it names.
func TestEncryptedSessionTimingFaults(t *testing.T) {
	tests := []struct {
		name  string
		fault func() fakeissuer.Fault // built inside the bubble
		took  time.Duration
		want  string
		after time.Duration
	}{
		{name: "slow body past the timeout", fault: func() fakeissuer.Fault {
			return fakeissuer.SlowBody(`{"token":"`+testkit.JWTExpiring(time.Now().Add(time.Hour))+`"}`, 8, 2*time.Second)
		}, took: exchange.RequestTimeout, want: "context deadline exceeded"},
		{name: "Retry-After seconds", fault: func() fakeissuer.Fault { return fakeissuer.Status(429, "Retry-After", "1") }, want: "429", after: time.Second},
		{name: "Retry-After date", fault: func() fakeissuer.Fault {
			return fakeissuer.Status(503, "Retry-After", time.Now().Add(2*time.Second).UTC().Format(http.TimeFormat))
		}, want: "503", after: 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				iss := &fakeissuer.Issuer{Key: testkit.RSAKey()}
				iss.Push(tt.fault())
				l := testkit.PipeServer(t, iss, nil)
				ex := newSession(t, "http://cp.example.com")
				ex.Client = testkit.PipeClient(ex.Client, l, true)
				t.Cleanup(ex.Client.CloseIdleConnections)
				start := time.Now()
				_, err := ex.Exchange(t.Context())
				if err == nil || !strings.Contains(err.Error(), tt.want) || !exchange.Retryable(err) {
					t.Fatalf("err = %v, want a retryable failure with %q", err, tt.want)
				}
				if took := time.Since(start); took != tt.took {
					t.Errorf("failed after %v, want %v", took, tt.took)
				}
				if after, _ := exchange.RetryAfter(err); after != tt.after {
					t.Errorf("RetryAfter = %v, want %v", after, tt.after)
				}
			})
		})
	}
}
