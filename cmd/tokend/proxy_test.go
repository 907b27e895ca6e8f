package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"
)

var proxyAddrRE = regexp.MustCompile(`credential proxy listening.*addr=(\S+)`)

// TestRunServesTheCredentialProxy: with --proxy-listen, run forwards a
// request to the upstream with the token it holds in place of whatever
// Authorization the client sent.
func TestRunServesTheCredentialProxy(t *testing.T) {
	h := newHarness(t)
	auths := make(chan string, 1)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auths <- r.Header.Get("Authorization")
	}))
	defer upstream.Close()
	h.env["TOKEND_PROXY_LISTEN"] = "127.0.0.1:0"
	h.env["AMBIENT_API_SERVER_URL"] = upstream.URL
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- h.run(ctx, "run") }()
	log := h.stderr.WaitFor(t, "the proxy's address", done, proxyAddrRE.MatchString)
	addr := proxyAddrRE.FindStringSubmatch(log)[1]
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/api/v1/sessions", nil)
	req.Header.Set("Authorization", "Bearer client-supplied")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	got := <-auths
	if want := "Bearer " + h.token(); got != want || resp.StatusCode != 200 {
		t.Errorf("upstream saw a different Authorization (status %d), want the token tokend holds", resp.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	h.assertNoSecrets(h.token())
}
