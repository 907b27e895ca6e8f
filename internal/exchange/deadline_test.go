package exchange_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ambient-code/tokend/internal/exchange"
	"github.com/ambient-code/tokend/test/fakeissuer"
	"github.com/ambient-code/tokend/internal/secret"
	"github.com/ambient-code/tokend/test/testkit"
)

// The tests here judge deadlines and pauses, so they run in a synctest
// bubble on an in-memory network: the clock is exact and a loaded machine
// changes nothing.

// pipeSA is a service-account exchange with the stand-in served on an
// in-memory network; call it inside the bubble. With tlsConfig nil the
// https exchange runs without TLS (the subject is elsewhere).
func pipeSA(t *testing.T, tlsConfig *tls.Config, roots *x509.CertPool) (*exchange.ServiceAccount, *fakeissuer.ServiceAccountIssuer) {
	t.Helper()
	iss := &fakeissuer.ServiceAccountIssuer{Key: testkit.RSAKey()}
	l := testkit.PipeServer(t, iss, tlsConfig)
	client := testkit.PipeClient(exchange.NewHTTPClient(roots), l, tlsConfig == nil)
	t.Cleanup(client.CloseIdleConnections)
	path := filepath.Join(t.TempDir(), "token")
	sa, err := iss.MintServiceAccountToken(fakeissuer.ServiceAccountAudience, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(sa), 0o600); err != nil {
		t.Fatal(err)
	}
	return &exchange.ServiceAccount{
		URL:               "https://example.com/token",
		IdentityPath:      path,
		RefreshCredential: secret.New(refreshCredential),
		Client:            client,
	}, iss
}

// hang never answers: it reads the request (so that the server notices the
// client hanging up), waits for that, then drops the connection without a
// response, as a stuck server does. (Returning instead would send an empty
// 200, which a client may still read as it gives up.)
func hang(_ http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	<-r.Context().Done()
	panic(http.ErrAbortHandler)
}

// TestServiceAccountDeadline: an issuer that never answers ends the exchange
// at its deadline exactly, with a retryable error that names the deadline.
func TestServiceAccountDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ex, iss := pipeSA(t, nil, nil)
		iss.Push(hang, hang)
		ex.Timeout = 200 * time.Millisecond
		start := time.Now()
		_, err := ex.Exchange(t.Context())
		if took := time.Since(start); took != 200*time.Millisecond {
			t.Errorf("Exchange took %v with a 200ms deadline", took)
		}
		if !errors.Is(err, context.DeadlineExceeded) || !exchange.Retryable(err) || !strings.Contains(err.Error(), "200ms deadline") {
			t.Errorf("err = %v, want a retryable deadline error naming the deadline", err)
		}
		if n := iss.Requests(); n != 1 {
			t.Errorf("%d requests, want 1", n)
		}
	})
}

// TestServiceAccount401Hint: a ServiceAccount token for another audience is
// answered 401 on every attempt. The exchange tries again after a jittered
// pause of about 100 ms (the kubelet may have rotated the file), gives up
// before the deadline once the next pause would reach it, and says which
// audience is needed.
func TestServiceAccount401Hint(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ex, iss := pipeSA(t, nil, nil)
		ex.Timeout = 300 * time.Millisecond
		sa, _ := iss.MintServiceAccountToken("kubernetes", time.Hour)
		if err := os.WriteFile(ex.IdentityPath, []byte(sa), 0o600); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_, err := ex.Exchange(t.Context())
		if exchange.StatusCode(err) != 401 || exchange.Retryable(err) {
			t.Fatalf("err = %v, want a permanent 401", err)
		}
		n := iss.Requests()
		for _, w := range []string{"ServiceAccount token rejected", "audience ambient-control-plane-tokenserver", fmt.Sprintf("%d attempts within the 300ms deadline", n)} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q lacks %q", err, w)
			}
		}
		if n < 2 || n > 3 {
			t.Errorf("%d requests, want 2 or 3: one at once, then after pauses of 100 ms and 200 ms, each ±50%%", n)
		}
		if took := time.Since(start); took < 50*time.Millisecond || took >= 300*time.Millisecond {
			t.Errorf("gave up after %v, want after the first pause (at least 50ms) and before the 300ms deadline", took)
		}
		noSecrets(t, err, sa)
	})
}

// TestServiceAccountDeadlineKeepsTheCause: when the deadline cuts an
// attempt short, the error still carries the failure before it.
func TestServiceAccountDeadlineKeepsTheCause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ex, iss := pipeSA(t, nil, nil)
		iss.Push(fakeissuer.Status(503), hang)
		ex.Timeout = time.Second
		_, err := ex.Exchange(t.Context())
		if !errors.Is(err, context.DeadlineExceeded) || exchange.StatusCode(err) != 503 || !exchange.Retryable(err) {
			t.Fatalf("err = %v, want the deadline and the 503 before it", err)
		}
		if want := "2 attempts within the 1s deadline; the attempt before: exchange: token endpoint answered 503"; !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	})
}

func TestServiceAccountDefaultDeadlineIsFiveSeconds(t *testing.T) {
	if exchange.ServiceAccountTimeout != 5*time.Second {
		t.Fatalf("ServiceAccountTimeout = %v", exchange.ServiceAccountTimeout)
	}
	synctest.Test(t, func(t *testing.T) {
		f := &exchange.ServiceAccount{URL: "https://cp.example.com/token", IdentityPath: filepath.Join(t.TempDir(), "token")}
		if err := os.WriteFile(f.IdentityPath, []byte("eyJhbGc.x.y"), 0o600); err != nil {
			t.Fatal(err)
		}
		var left time.Duration
		f.Client = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			dl, _ := r.Context().Deadline()
			left = time.Until(dl)
			return &http.Response{StatusCode: 400, Body: http.NoBody, Header: http.Header{}}, nil
		})}
		f.Exchange(t.Context())
		if left != 5*time.Second {
			t.Errorf("request deadline %v away, want 5s from the start of Exchange", left)
		}
	})
}

// TestServiceAccountTLS: a server that speaks only TLS 1.1, or whose
// certificate does not verify, fails the exchange with an error naming the
// cause, not the deadline.
func TestServiceAccountTLS(t *testing.T) {
	tests := []struct {
		name   string
		server *tls.Config
		roots  func() *x509.CertPool
		want   string
	}{
		{name: "TLS 1.1 only", server: &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}, roots: func() *x509.CertPool { return testkit.ServerCert().Roots }, want: "protocol version"},
		{name: "unknown CA", server: &tls.Config{}, roots: x509.NewCertPool, want: "certificate signed by unknown authority"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ex, iss := pipeSA(t, tt.server, tt.roots())
				ex.Timeout = 500 * time.Millisecond
				_, err := ex.Exchange(t.Context())
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("err = %v, want a TLS failure mentioning %q", err, tt.want)
				}
				if n := iss.Requests(); n != 0 {
					t.Errorf("%d requests got through", n)
				}
			})
		})
	}
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
			return fakeissuer.SlowBody(`{"token":"`+testkit.JWTExpiring(time.Now().Add(time.Hour))+`"}`, 8, 200*time.Millisecond)
		}, took: 400 * time.Millisecond, want: "context deadline exceeded"},
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
				ex.Timeout = 400 * time.Millisecond
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
