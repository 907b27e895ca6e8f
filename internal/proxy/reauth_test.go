package proxy

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ambient-code/tokend/internal/secret"
)

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// always401 is an upstream that refuses every token.
func always401(t *testing.T) (string, *recorder) {
	return authUpstream(t, "tok-nobody-has")
}

// TestUnauthorizedExchangesBounded: an upstream that answers 401 to
// everything costs the issuer one exchange per token the refresher
// obtains, at most Max401Refreshes a minute, not one per request.
func TestUnauthorizedExchangesBounded(t *testing.T) {
	for _, tc := range []struct {
		name     string
		newToken bool // each exchange yields a new token (else the issuer's cached one)
	}{{"fresh token per exchange", true}, {"issuer hands out its cached token", false}} {
		t.Run(tc.name, func(t *testing.T) {
			up, rec := always401(t)
			clk := &clock{t: time.Unix(1_700_000_000, 0)}
			src := newSource()
			src.set("tok-0", noExpiry)
			n := 0
			src.onRefresh = func(s *fakeSource) {
				if tc.newToken {
					n++
					s.tok = secret.New(fmt.Sprintf("tok-x%d", n))
				}
			}
			r := start(t, up, src, func(c *Config) { c.Now = clk.now }, nil)
			send := func(count int) {
				t.Helper()
				for range count {
					if code, _, _ := r.do(t, http.MethodGet, "/x", "", nil); code != http.StatusBadGateway {
						t.Fatalf("status %d, want 502 in place of the upstream's 401", code)
					}
				}
			}
			expect := func(when string, want int) {
				t.Helper()
				if got := src.refreshCount(); got != want {
					t.Fatalf("%s: %d exchanges, want %d", when, got, want)
				}
			}
			send(400)
			expect("400 requests on one token", 1)
			src.set("tok-scheduled-1", noExpiry) // the refresher's schedule
			send(50)
			expect("a new scheduled token", 2)
			src.set("tok-scheduled-2", noExpiry)
			send(50)
			expect("a third token within the minute", 2)
			clk.add(time.Minute)
			send(50)
			expect("a minute later", 3)
			if got, want := len(rec.all()), 550+3; tc.newToken && got != want {
				t.Errorf("the upstream got %d requests, want %d (one retry per exchange)", got, want)
			}
		})
	}
}

// gatedSource is a fakeSource whose Refresh waits for gate to open.
type gatedSource struct {
	*fakeSource
	gate chan struct{}
}

func (s *gatedSource) Refresh(ctx context.Context) error {
	<-s.gate
	return s.fakeSource.Refresh(ctx)
}

// TestUnauthorizedExchangeShared: concurrent 401s on one token share one
// exchange, and every request is retried with the token it brought.
func TestUnauthorizedExchangeShared(t *testing.T) {
	const n = 16
	stale := make(chan struct{}, n)
	var fresh atomic.Int32
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "Bearer tok-new" {
			fresh.Add(1)
			return
		}
		stale <- struct{}{}
		http.Error(w, "stale", http.StatusUnauthorized)
	})
	src := &gatedSource{fakeSource: newSource(), gate: make(chan struct{})}
	src.set("tok-old", noExpiry)
	src.onRefresh = func(s *fakeSource) { s.tok = secret.New("tok-new") }
	p, err := New(Config{Upstream: mustURL(t, up)}, src)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p)
	defer srv.Close()
	res := make(chan int, n)
	for range n {
		go func() {
			resp, err := http.Get(srv.URL + "/x")
			if err != nil {
				res <- 0
				return
			}
			resp.Body.Close()
			res <- resp.StatusCode
		}()
	}
	for range n {
		<-stale // every request got its 401
	}
	close(src.gate)
	for range n {
		if code := <-res; code != http.StatusOK {
			t.Errorf("status %d, want 200 after the retry", code)
		}
	}
	if got := src.refreshCount(); got != 1 {
		t.Errorf("%d exchanges for %d concurrent 401s on one token, want 1", got, n)
	}
	if got := fresh.Load(); got != n {
		t.Errorf("%d requests reached the upstream with the fresh token, want %d", got, n)
	}
}
