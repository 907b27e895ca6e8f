package proxy

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ambient-code/tokend/internal/secret"
)

var noExpiry time.Time

// clock is a settable time source.
type clock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// TestExpiredTokenNeverSent: a token past its expiry, or within
// MinRemaining of it, is never sent. The proxy asks for a fresh one; when
// none comes the client gets 503 with Retry-After, and when one comes it is
// the one sent.
func TestExpiredTokenNeverSent(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		expiry  time.Time
		fresh   bool // Refresh yields a fresh token
		want    int
		wantTok string
	}{
		{"expired, no fresh token", now.Add(-time.Minute), false, http.StatusServiceUnavailable, ""},
		{"expiring within MinRemaining", now.Add(500 * time.Millisecond), false, http.StatusServiceUnavailable, ""},
		{"expired, fresh token comes", now.Add(-time.Minute), true, http.StatusOK, "Bearer tok-fresh"},
		{"valid", now.Add(time.Minute), false, http.StatusOK, "Bearer tok-old"},
		{"expiry unknown", noExpiry, false, http.StatusOK, "Bearer tok-old"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up, rec := echoUpstream(t)
			src := newSource()
			src.set("tok-old", tc.expiry)
			src.onRefresh = func(s *fakeSource) {
				if tc.fresh {
					s.tok, s.exp = secret.New("tok-fresh"), now.Add(time.Minute)
				}
			}
			c := &clock{t: now}
			r := start(t, up.URL, src, func(cfg *Config) { cfg.Now = c.now }, nil)
			code, h, body := r.do(t, http.MethodGet, "/x", "", nil)
			if code != tc.want {
				t.Fatalf("status %d %q, want %d", code, body, tc.want)
			}
			got := rec.all()
			if tc.wantTok == "" {
				if len(got) != 0 {
					t.Fatalf("upstream got %d requests with an expired token", len(got))
				}
				if h.Get("Retry-After") != "1" || !strings.HasPrefix(h.Get("Content-Type"), "text/plain") || !strings.Contains(body, "expired") {
					t.Errorf("503 with Retry-After %q, %s %q; want Retry-After 1 and a plain-text reason", h.Get("Retry-After"), h.Get("Content-Type"), body)
				}
				if n := r.counter(t, "tokend_proxy_requests_total", map[string]string{"outcome": OutcomeExpired, "code_class": "none"}); n != 1 {
					t.Errorf("expired = %v, want 1", n)
				}
				return
			}
			if len(got) != 1 || got[0].header.Get("Authorization") != tc.wantTok {
				t.Fatalf("upstream got %d requests, want 1 with %s", len(got), tc.wantTok)
			}
		})
	}
}

// TestFirstTokenWait: before the first token a request waits
// FirstTokenWait, then gets 503; a token arriving within the wait lets it
// through. The waits run on synctest's fake clock, against the handler.
func TestFirstTokenWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newSource()
		p, err := New(Config{Upstream: mustURL(t, "http://api.invalid"), FirstTokenWait: 3 * time.Second}, src)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		w := httptest.NewRecorder()
		p.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/x", nil))
		if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" || !strings.Contains(w.Body.String(), "no token yet") {
			t.Fatalf("got %d %q, want 503 no token yet with Retry-After", w.Code, w.Body.String())
		}
		if waited := time.Since(start); waited != 3*time.Second {
			t.Errorf("waited %v on the fake clock, want exactly FirstTokenWait", waited)
		}
	})
}

// TestFirstTokenArrives: a request waiting for the first token is sent
// with it once it arrives.
func TestFirstTokenArrives(t *testing.T) {
	up, rec := echoUpstream(t)
	src := newSource()
	src.waiting = make(chan struct{}, 1)
	r := start(t, up.URL, src, func(c *Config) { c.FirstTokenWait = time.Hour }, nil)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, r.url+"/first", nil)
	done := async(req)
	<-src.waiting // the request is waiting for the first token
	src.set("tok-first", noExpiry)
	if res := <-done; res.code != http.StatusOK {
		t.Fatalf("status %d %v, want 200", res.code, res.err)
	}
	if got := rec.all(); len(got) != 1 || got[0].header.Get("Authorization") != "Bearer tok-first" {
		t.Fatalf("upstream got %+v", got)
	}
}
