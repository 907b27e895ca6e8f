package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ambient-code/tokend/internal/secret"
)

// TestFaultMatrixNeverAnswers401 drives the proxy through every state of
// its token and every way the upstream can answer, with each kind of
// request body, and checks what a client sees: never a 401 (an MCP client
// would drop the server), always one line of plain text from the proxy
// when it answers itself, Retry-After exactly with its 503s, a 403 only
// while the token is withdrawn; and what the upstream sees: never an
// expired or withdrawn token.
func TestFaultMatrixNeverAnswers401(t *testing.T) {
	now := time.Now()
	states := []struct {
		name string
		set  func(s *fakeSource) // the source's state before the request
		want int                 // the status when the upstream takes the token; 0: the upstream's
	}{
		{"no token yet", func(s *fakeSource) {}, http.StatusServiceUnavailable},
		{"valid", func(s *fakeSource) { s.set("tok-valid", now.Add(time.Hour)) }, 0},
		{"expired, issuer down", func(s *fakeSource) {
			s.set("tok-expired", now.Add(-time.Minute))
			s.failing = errors.New("control plane unavailable")
		}, http.StatusServiceUnavailable},
		{"expired, issuer hands out the same", func(s *fakeSource) { s.set("tok-expired", now.Add(-time.Minute)) }, http.StatusServiceUnavailable},
		{"expired, issuer refreshes", func(s *fakeSource) {
			s.set("tok-expired", now.Add(-time.Minute))
			s.onRefresh = func(s *fakeSource) { s.tok, s.exp = secret.New("tok-fresh"), now.Add(time.Hour) }
		}, 0},
		{"refused before the first token", func(s *fakeSource) {
			s.withdraw("token endpoint answered 403 Forbidden: runner access revoked")
		}, http.StatusForbidden},
		{"withdrawn", func(s *fakeSource) {
			s.set("tok-revoked", now.Add(time.Hour))
			s.withdraw("token endpoint answered 403 Forbidden: runner access revoked")
		}, http.StatusForbidden},
		{"withdrawn at the refresh after a 401", func(s *fakeSource) {
			s.set("tok-valid", now.Add(time.Hour))
			s.onRefresh = func(s *fakeSource) {
				s.tok, s.held, s.reason = secret.String{}, false, "token endpoint answered 403 Forbidden: runner access revoked"
				s.cancel()
			}
		}, 0},
	}
	upstreams := []struct {
		name   string
		accept func(tok string) bool
	}{
		{"accepts", func(string) bool { return true }},
		{"401 always", func(string) bool { return false }},
		{"401 but to a fresh token", func(tok string) bool { return tok == "tok-fresh" }},
	}
	bodies := []struct {
		name string
		body func() io.Reader
	}{
		{"no body", func() io.Reader { return nil }},
		{"replayable", func() io.Reader { return strings.NewReader("payload") }},
		{"streamed", func() io.Reader { return io.MultiReader(strings.NewReader("payload")) }},
	}
	for _, st := range states {
		for _, up := range upstreams {
			for _, b := range bodies {
				t.Run(st.name+"/"+up.name+"/"+b.name, func(t *testing.T) {
					var mu sync.Mutex // guards sent
					var sent []string
					srv := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
						_, _ = io.Copy(io.Discard, r.Body)
						tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
						mu.Lock()
						sent = append(sent, tok)
						mu.Unlock()
						if !up.accept(tok) {
							w.Header().Set("WWW-Authenticate", `Bearer realm="api"`)
							http.Error(w, "unauthorized", http.StatusUnauthorized)
							return
						}
						fmt.Fprint(w, "ok")
					})
					src := newSource()
					st.set(src)
					r := start(t, srv, src, func(c *Config) { c.FirstTokenWait = time.Millisecond }, nil)
					req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, r.url+"/call", b.body())
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					r.stop() // every handler has returned: sent is complete
					mu.Lock()
					defer mu.Unlock()
					if resp.StatusCode == http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != "" {
						t.Fatalf("the client got %d %q with WWW-Authenticate %q", resp.StatusCode, body, resp.Header.Get("WWW-Authenticate"))
					}
					for _, tok := range sent {
						if tok == "tok-expired" || tok == "tok-revoked" || tok == "" {
							t.Errorf("the upstream was sent %q", tok)
						}
					}
					if resp.StatusCode == http.StatusOK {
						if string(body) != "ok" {
							t.Errorf("200 with %q", body)
						}
					} else if !strings.HasPrefix(string(body), "tokend proxy: ") || strings.Count(string(body), "\n") != 1 {
						t.Errorf("%d %q: want one line of plain text from the proxy", resp.StatusCode, body)
					}
					if (resp.Header.Get("Retry-After") != "") != (resp.StatusCode == http.StatusServiceUnavailable) {
						t.Errorf("%d with Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
					}
					if resp.StatusCode == http.StatusForbidden && !strings.Contains(string(body), "withdrawn") {
						t.Errorf("403 %q without the withdrawal", body)
					}
					if up.name == "accepts" && st.want != 0 && resp.StatusCode != st.want {
						t.Errorf("status %d %q, want %d", resp.StatusCode, body, st.want)
					}
					if up.name == "accepts" && st.want == 0 && resp.StatusCode != http.StatusOK {
						t.Errorf("status %d %q, want the upstream's 200", resp.StatusCode, body)
					}
				})
			}
		}
	}
}

// TestStreamAcrossRotationAndWithdrawal: a server-sent event stream opened
// with one token stays open and delivers events after the token rotates;
// when the token is withdrawn the stream ends cleanly (the client reads
// the end, not a broken connection), and the next request gets the 403
// without reaching the upstream.
func TestStreamAcrossRotationAndWithdrawal(t *testing.T) {
	next := make(chan struct{})
	var requests atomic.Int32
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Header().Set("Content-Type", "text/event-stream")
		rc := http.NewResponseController(w)
		for i := 0; ; i++ {
			fmt.Fprintf(w, "id: %d\ndata: event %d\n\n", i, i)
			if err := rc.Flush(); err != nil {
				return
			}
			select {
			case <-next:
			case <-r.Context().Done():
				return
			}
		}
	})
	src := newSource()
	src.set("tok-1", noExpiry)
	r := start(t, up, src, nil, nil)

	resp, err := http.Get(r.url + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if _, err := readEvent(br); err != nil {
		t.Fatal(err)
	}
	src.set("tok-2", noExpiry) // a rotation
	next <- struct{}{}
	if ev, err := readEvent(br); err != nil || ev != "id: 1\ndata: event 1\n" {
		t.Fatalf("after a rotation: %q %v, want the next event", ev, err)
	}

	src.withdraw("token endpoint answered 403 Forbidden: runner access revoked")
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatalf("after the withdrawal the stream broke (%v), want a clean end", err)
	}
	if strings.Contains(string(rest), "event 2") {
		t.Errorf("an event arrived after the withdrawal: %q", rest)
	}
	again, err := http.Get(r.url + "/events")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(again.Body)
	again.Body.Close()
	if again.StatusCode != http.StatusForbidden || !strings.Contains(string(b), "runner access revoked") {
		t.Errorf("after the withdrawal: %d %q, want the 403 naming the refusal", again.StatusCode, b)
	}
	if n := r.counter(t, "tokend_proxy_requests_total", map[string]string{"outcome": OutcomeWithdrawn}); n < 1 {
		t.Errorf("withdrawn outcomes = %v", n)
	}
	if n := requests.Load(); n != 1 {
		t.Errorf("the upstream got %d requests, want the stream's alone", n)
	}
}
