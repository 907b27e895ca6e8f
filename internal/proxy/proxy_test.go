package proxy

import (
	"bufio"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// get sends method path through the rig with the given headers and returns
// the status and body.
func (r *rig) do(t *testing.T, method, path, body string, header http.Header) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, r.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// TestCredentialReplaced: whatever credentials the client sends, upstream
// gets exactly the source's token; forwarding headers are dropped.
func TestCredentialReplaced(t *testing.T) {
	up, rec := echoUpstream(t)
	src := newSource()
	src.set("tok-current", noExpiry)
	r := start(t, up.URL+"/api", src, nil, nil)

	code, _, body := r.do(t, http.MethodPost, "/v1/sessions?x=1", "hello", http.Header{
		"Authorization":       {"Bearer client-secret", "Basic Y2xpZW50"},
		"Proxy-Authorization": {"Basic client-proxy-secret"},
		"X-Forwarded-For":     {"203.0.113.9"},
		"Forwarded":           {"for=203.0.113.9"},
	})
	if code != http.StatusOK || body != "ok" {
		t.Fatalf("got %d %q, want 200 ok", code, body)
	}
	got := rec.all()
	if len(got) != 1 {
		t.Fatalf("upstream got %d requests, want 1", len(got))
	}
	g := got[0]
	if a := g.header.Values("Authorization"); len(a) != 1 || a[0] != "Bearer tok-current" {
		t.Errorf("upstream Authorization = %q, want the source's token only", a)
	}
	for _, h := range []string{"Proxy-Authorization", "X-Forwarded-For", "Forwarded"} {
		if v := g.header.Values(h); len(v) > 0 {
			t.Errorf("upstream got %s: %q", h, v)
		}
	}
	if g.uri != "/api/v1/sessions?x=1" || g.body != "hello" {
		t.Errorf("upstream got %s %q, want /api/v1/sessions?x=1 hello", g.uri, g.body)
	}
	if n := r.counter(t, "tokend_proxy_requests_total", map[string]string{"outcome": OutcomeForwarded, "code_class": "2xx"}); n != 1 {
		t.Errorf("forwarded 2xx = %v, want 1", n)
	}
}

// TestNotAnOpenProxy: absolute-form targets, asterisk-form and CONNECT are
// refused; a foreign Host is ignored and the request goes to the upstream
// with the upstream's host. Another server never sees a request.
func TestNotAnOpenProxy(t *testing.T) {
	up, rec := echoUpstream(t)
	elsewhere, elsewhereRec := echoUpstream(t)
	other := strings.TrimPrefix(elsewhere.URL, "http://")
	src := newSource()
	src.set("tok-open", noExpiry)
	r := start(t, up.URL, src, nil, nil)

	for _, tc := range []struct {
		name, request string
		want          int
	}{
		{"absolute-form", "GET " + elsewhere.URL + "/steal HTTP/1.1\r\nHost: " + other + "\r\n\r\n", http.StatusBadRequest},
		{"absolute-form to itself", "GET " + r.url + "/x HTTP/1.1\r\nHost: " + r.addr + "\r\n\r\n", http.StatusBadRequest},
		{"CONNECT", "CONNECT " + other + " HTTP/1.1\r\nHost: " + other + "\r\n\r\n", http.StatusMethodNotAllowed},
		{"asterisk-form", "GET * HTTP/1.1\r\nHost: " + r.addr + "\r\n\r\n", http.StatusBadRequest},
		// net/http answers OPTIONS * itself, forwarding nothing.
		{"OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: " + r.addr + "\r\n\r\n", http.StatusOK},
		{"foreign Host", "GET /pinned HTTP/1.1\r\nHost: " + other + "\r\n\r\n", http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := rawStatus(t, r.addr, tc.request); got != tc.want {
				t.Errorf("status %d, want %d", got, tc.want)
			}
		})
	}
	if n := len(elsewhereRec.all()); n != 0 {
		t.Errorf("the other server got %d requests", n)
	}
	got := rec.all()
	if len(got) != 1 || got[0].uri != "/pinned" || got[0].host != strings.TrimPrefix(up.URL, "http://") {
		t.Fatalf("upstream got %+v, want one GET /pinned with its own host", got)
	}
	if n := r.counter(t, "tokend_proxy_requests_total", map[string]string{"outcome": OutcomeRefused}); n != 4 {
		t.Errorf("refused = %v, want 4", n)
	}
}

// rawStatus writes request on a new connection to addr and returns the
// response's status.
func rawStatus(t *testing.T, addr, request string) int {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	return resp.StatusCode
}

// TestUpstreamTLS: the upstream's certificate is verified against the
// given roots; without them the request fails with 502 and no token goes
// out on the unverified connection.
func TestUpstreamTLS(t *testing.T) {
	var hits atomic.Int32
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		fmt.Fprint(w, r.TLS != nil)
	}))
	up.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake
	up.StartTLS()
	defer up.Close()
	roots := x509.NewCertPool()
	roots.AddCert(up.Certificate())
	src := newSource()
	src.set("tok-tls", noExpiry)

	trusted := start(t, up.URL, src, func(c *Config) { c.RootCAs = roots }, nil)
	if code, _, body := trusted.do(t, http.MethodGet, "/", "", nil); code != http.StatusOK || body != "true" {
		t.Fatalf("with the roots: %d %q, want 200 true", code, body)
	}
	untrusted := start(t, up.URL, src, func(c *Config) { c.RootCAs = x509.NewCertPool() }, nil)
	if code, _, _ := untrusted.do(t, http.MethodGet, "/", "", nil); code != http.StatusBadGateway {
		t.Fatalf("without the roots: %d, want 502", code)
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("upstream handled %d requests, want 1", n)
	}
	if n := untrusted.counter(t, "tokend_proxy_requests_total", map[string]string{"outcome": OutcomeUpstreamError}); n != 1 {
		t.Errorf("upstream_error = %v, want 1", n)
	}
}

// TestConcurrencyLimit: beyond MaxConcurrent requests in flight, 503 with
// Retry-After at once; the slot frees when the request ends.
func TestConcurrencyLimit(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			entered <- struct{}{}
			<-release
		}
	}))
	defer up.Close()
	src := newSource()
	src.set("tok-limit", noExpiry)
	r := start(t, up.URL, src, func(c *Config) { c.MaxConcurrent = 1 }, nil)

	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, r.url+"/hold", nil)
	held := async(req)
	<-entered
	code, h, body := r.do(t, http.MethodGet, "/other", "", nil)
	if code != http.StatusServiceUnavailable || h.Get("Retry-After") != "1" || !strings.Contains(body, "too many") {
		t.Errorf("over the limit: %d Retry-After %q %q, want 503 with Retry-After 1", code, h.Get("Retry-After"), body)
	}
	close(release)
	if res := <-held; res.code != http.StatusOK {
		t.Errorf("held request: %d %v, want 200", res.code, res.err)
	}
	if code, _, _ := r.do(t, http.MethodGet, "/other", "", nil); code != http.StatusOK {
		t.Errorf("after the slot freed: %d, want 200", code)
	}
}

// TestHeaderLimit: a header block over MaxHeaderBytes gets 431 and never
// reaches upstream.
func TestHeaderLimit(t *testing.T) {
	up, rec := echoUpstream(t)
	src := newSource()
	src.set("tok-hdr", noExpiry)
	r := start(t, up.URL, src, func(c *Config) { c.MaxHeaderBytes = 1 << 10 }, nil)
	req := "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 8<<10) + "\r\n\r\n"
	if got := rawStatus(t, r.addr, req); got != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("status %d, want 431", got)
	}
	if n := len(rec.all()); n != 0 {
		t.Errorf("upstream got %d requests", n)
	}
}

// TestConnectionHeaderCannotDropToken: a client naming Authorization in
// Connection (a hop-by-hop header list) does not make the proxy drop the
// token it sets: hop-by-hop headers go before Rewrite runs.
func TestConnectionHeaderCannotDropToken(t *testing.T) {
	up, rec := echoUpstream(t)
	src := newSource()
	src.set("tok-hop", noExpiry)
	r := start(t, up.URL, src, nil, nil)
	req := "GET /hop HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Authorization\r\nAuthorization: Bearer client\r\n\r\n"
	if got := rawStatus(t, r.addr, req); got != http.StatusOK {
		t.Fatalf("status %d, want 200", got)
	}
	if got := rec.all(); len(got) != 1 || got[0].header.Get("Authorization") != "Bearer tok-hop" {
		t.Fatalf("upstream got %+v, want the proxy's token", got)
	}
}
