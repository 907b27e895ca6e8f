package proxy

import (
	"bufio"
	"net/http"
	"net/http/httputil"
	"path"
	"strings"
	"testing"
)

// TestDotSegmentsRefused: a path with a "." or ".." segment, in any
// encoding, is refused with 400 before a token is attached, so it never
// reaches the upstream, whose base path it could leave; paths with dots
// that are not segments pass.
func TestDotSegmentsRefused(t *testing.T) {
	up, rec := echoUpstream(t)
	src := newSource()
	src.set("tok-dots", noExpiry)
	r := start(t, up.URL+"/api", src, nil, nil)
	for _, target := range []string{
		"/../secret", "/x/../../secret", "/x/..", "/..", "/./secret",
		"/%2e%2e/secret", "/%2E%2E/secret", "/%2e%2E/secret", "/.%2e/secret", "/%2e./secret", "/%2e/secret",
		"/..%2fsecret", "/..%2Fsecret", "/x%2f..%2f..%2fsecret",
		"/..%5Csecret", "/..%5csecret", `/..\secret`, `/x\..\..\secret`,
		"/%252e%252e/secret", "/%252E%252E%252Fsecret", "/%25252e%25252e/secret", "/..%255csecret",
		"/..;/secret", "/..;x=1/secret", "/%2e%2e;/secret",
	} {
		if got := rawStatus(t, r.addr, "GET "+target+" HTTP/1.1\r\nHost: x\r\n\r\n"); got != http.StatusBadRequest {
			t.Errorf("GET %s: status %d, want 400", target, got)
		}
	}
	if got := rec.all(); len(got) != 0 {
		t.Fatalf("the upstream got %d requests with dot segments, first %s", len(got), got[0].uri)
	}
	for target, want := range map[string]string{
		"/a..b/c":           "/api/a..b/c",
		"/.well-known/x":    "/api/.well-known/x",
		"/.../x":            "/api/.../x",
		"/x/y.":             "/api/x/y.",
		"/x?q=../..":        "/api/x?q=../..",
		"/%2e%2ex/%25zz/ok": "/api/%2e%2ex/%25zz/ok",
	} {
		if got := rawStatus(t, r.addr, "GET "+target+" HTTP/1.1\r\nHost: x\r\n\r\n"); got != http.StatusOK {
			t.Errorf("GET %s: status %d, want 200", target, got)
			continue
		}
		all := rec.all()
		if uri := all[len(all)-1].uri; uri != want {
			t.Errorf("GET %s reached the upstream as %s, want %s", target, uri, want)
		}
	}
}

// FuzzStaysUnderBasePath: whatever the request target, a request the
// proxy forwards reaches a path under the upstream's base path, however
// often a server on the way decodes it and whichever separator it takes.
func FuzzStaysUnderBasePath(f *testing.F) {
	for _, s := range []string{"/x", "/../x", "/%2e%2e/x", "/..%2fx", "/..%5cx", "/%252e%252e/x", "/a/./b", "/..;/x", "/a%2f..", "/%%32e%%32e/x"} {
		f.Add(s)
	}
	base := mustURL(f, "http://upstream.test/api")
	f.Fuzz(func(t *testing.T, target string) {
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader("GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n")))
		if err != nil {
			return // the server refuses it before the proxy sees it
		}
		if refuseTarget(req) != nil {
			return
		}
		pr := &httputil.ProxyRequest{In: req, Out: req.Clone(req.Context())}
		pr.SetURL(base)
		p := pr.Out.URL.EscapedPath()
		for range maxDecodes + 2 {
			resolved := path.Clean(strings.ReplaceAll(p, `\`, "/"))
			if resolved != "/api" && !strings.HasPrefix(resolved, "/api/") {
				t.Fatalf("target %q was forwarded as %q, which resolves to %q outside /api", target, pr.Out.URL.EscapedPath(), resolved)
			}
			p = unescape(p)
		}
	})
}
