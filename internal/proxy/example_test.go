package proxy_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/ambient-code/tokend/internal/proxy"
	"github.com/ambient-code/tokend/internal/secret"
)

// heldToken is a Source holding one token that never changes: the daemon's
// token holder plays this part in tokend.
type heldToken struct{ ready chan struct{} }

func (h heldToken) Token() (secret.String, time.Time, bool) {
	return secret.New("example-token"), time.Now().Add(time.Hour), true
}
func (h heldToken) Refresh(ctx context.Context) error { return ctx.Err() }
func (h heldToken) Ready() <-chan struct{}            { return h.ready }

// Withdrawal: this token is never withdrawn.
func (h heldToken) Withdrawal() (string, context.Context) { return "", context.Background() }

// The agent sends its request without a credential, or with any it likes;
// the API server receives the daemon's token and nothing else.
func Example() {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s with the token: %t", r.Method, r.URL.Path, r.Header.Get("Authorization") == "Bearer example-token")
	}))
	defer api.Close()

	upstream, err := proxy.ParseUpstream(api.URL) // --proxy-upstream or AMBIENT_API_SERVER_URL
	if err != nil {
		fmt.Println(err)
		return
	}
	src := heldToken{ready: make(chan struct{})}
	close(src.ready)
	p, err := proxy.New(proxy.Config{Upstream: upstream}, src)
	if err != nil {
		fmt.Println(err)
		return
	}
	ln, err := proxy.ListenMode("127.0.0.1:0", 0o660) // --proxy-listen
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx, ln) }()

	req, _ := http.NewRequest(http.MethodGet, "http://"+ln.Addr().String()+"/v1/sessions", nil)
	req.Header.Set("Authorization", "Bearer something-the-agent-made-up")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, string(body))

	stop()
	fmt.Println("Serve returned", <-done)
	// Output:
	// 200 GET /v1/sessions with the token: true
	// Serve returned <nil>
}

// With the default limits, the proxy's client connections cost at most
// this much, whatever the clients send: 288 connections, each with a
// 32 KiB header of 100 fields in progress.
func ExampleConfig_MemoryBound() {
	fmt.Printf("%.1f MiB\n", float64(proxy.Config{}.MemoryBound())/(1<<20))
	// Output: 30.5 MiB
}
