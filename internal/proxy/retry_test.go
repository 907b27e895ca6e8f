package proxy

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/ambient-code/tokend/internal/secret"
)

// authUpstream answers 401 "stale" to any token but the accepted one, and
// records every request.
func authUpstream(t *testing.T, accepted string) (string, *recorder) {
	rec := &recorder{}
	url := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rec.add(r, string(b))
		if r.Header.Get("Authorization") != "Bearer "+accepted {
			http.Error(w, "stale", http.StatusUnauthorized)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	return url, rec
}

// TestRetryOn401: a 401 makes the proxy ask for a fresh token and send the
// request once more with it, body included, when the body can be replayed.
// The upstream's 401 never reaches the client: a 401 after the retry, or
// when the issuer hands out the same token, is a 502; a body that cannot
// be sent again gets a 503 with Retry-After once a fresh token is in
// place. Each answer is one line of plain text.
func TestRetryOn401(t *testing.T) {
	for _, tc := range []struct {
		name      string
		accepted  string // the token the upstream takes
		fresh     string // the token Refresh yields; "" keeps the old one
		body      func() io.Reader
		wantCode  int
		wantToks  []string // the tokens upstream saw, in order
		wantRetry float64
	}{
		{"replayable body, fresh token", "tok-new", "tok-new", func() io.Reader { return strings.NewReader("payload") },
			http.StatusOK, []string{"tok-old", "tok-new"}, 1},
		{"no body", "tok-new", "tok-new", func() io.Reader { return nil },
			http.StatusOK, []string{"tok-old", "tok-new"}, 1},
		{"retried once only", "tok-never", "tok-new", func() io.Reader { return strings.NewReader("payload") },
			http.StatusBadGateway, []string{"tok-old", "tok-new"}, 1},
		{"same token after refresh", "tok-new", "", func() io.Reader { return strings.NewReader("payload") },
			http.StatusBadGateway, []string{"tok-old"}, 0},
		{"streamed body is not replayed", "tok-new", "tok-new", func() io.Reader { return io.MultiReader(strings.NewReader("payload")) },
			http.StatusServiceUnavailable, []string{"tok-old"}, 0},
		{"body over MaxReplayBytes", "tok-new", "tok-new", func() io.Reader { return strings.NewReader(strings.Repeat("p", 2048)) },
			http.StatusServiceUnavailable, []string{"tok-old"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up, rec := authUpstream(t, tc.accepted)
			src := newSource()
			src.set("tok-old", noExpiry)
			src.onRefresh = func(s *fakeSource) {
				if tc.fresh != "" {
					s.tok = secret.New(tc.fresh)
				}
			}
			r := start(t, up, src, func(c *Config) { c.MaxReplayBytes = 1024 }, nil)
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, r.url+"/call", tc.body())
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.wantCode {
				t.Fatalf("status %d %q, want %d", resp.StatusCode, b, tc.wantCode)
			}
			if resp.StatusCode != http.StatusOK && (!strings.HasPrefix(string(b), "tokend proxy: ") || strings.Count(string(b), "\n") != 1 ||
				resp.Header.Get("Content-Type") != "text/plain; charset=utf-8") {
				t.Errorf("answer %q (%s), want one line of plain text from the proxy", b, resp.Header.Get("Content-Type"))
			}
			if (resp.Header.Get("Retry-After") != "") != (resp.StatusCode == http.StatusServiceUnavailable) {
				t.Errorf("status %d with Retry-After %q: want it with a 503 only", resp.StatusCode, resp.Header.Get("Retry-After"))
			}
			got := rec.all()
			var toks []string
			for _, g := range got {
				toks = append(toks, strings.TrimPrefix(g.header.Get("Authorization"), "Bearer "))
				if want := bodyOf(t, tc.body()); g.body != want {
					t.Errorf("upstream got body of %d bytes, want %d", len(g.body), len(want))
				}
			}
			if strings.Join(toks, ",") != strings.Join(tc.wantToks, ",") {
				t.Errorf("upstream saw tokens %v, want %v", toks, tc.wantToks)
			}
			if n := r.counter(t, "tokend_proxy_retries_total", nil); n != tc.wantRetry {
				t.Errorf("retries = %v, want %v", n, tc.wantRetry)
			}
		})
	}
}

func bodyOf(t *testing.T, r io.Reader) string {
	if r == nil {
		return ""
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
