package tokenfile_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/ambient-code/tokend/tokenfile"
)

// The three-line start: create the Watcher, run it for as long as the
// program needs the token, and give HTTP clients its Transport.
func Example() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	w, err := tokenfile.New("/var/run/ambient/token")
	if err != nil {
		log.Fatal(err)
	}
	go w.Run(ctx)
	client := &http.Client{Transport: w.Transport(nil)}

	// Every request now carries the current token. Optionally wait for the
	// first one before serving.
	if _, err := w.Wait(ctx); err != nil {
		log.Fatal(err)
	}
	_, _ = client.Get("http://api.example/v1/things")
}

// A client that talks to more than one origin lists them all; the token
// goes to no other, and never over plain http to a host it reached over
// https.
func ExampleAllowOrigins() {
	w, err := tokenfile.New("/var/run/ambient/token")
	if err != nil {
		log.Fatal(err)
	}
	client := &http.Client{Transport: w.Transport(nil,
		tokenfile.AllowOrigins("https://api.example", "https://uploads.api.example:8443"))}
	_, _ = client.Get("https://uploads.api.example:8443/v1/blobs")
}

// apiClient stands for an existing API client that holds its own token.
type apiClient struct {
	mu    sync.Mutex // guards token
	token string
	set   chan string // for the example's output only
}

func (c *apiClient) SetToken(tok string) {
	c.mu.Lock()
	c.token = tok
	c.mu.Unlock()
	c.set <- tok
}

// A client that keeps its own token follows the file through WithOnChange.
// The callback runs once per change, never concurrently.
func ExampleWithOnChange() {
	dir, _ := os.MkdirTemp("", "tokenfile-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "token")
	replace := func(tok string) { // how tokend writes the file
		_ = os.WriteFile(path+".tmp", []byte(tok), 0o600)
		_ = os.Rename(path+".tmp", path)
	}
	replace("example-token-1")

	api := &apiClient{set: make(chan string)}
	w, err := tokenfile.New(path,
		tokenfile.WithOnChange(api.SetToken),
		tokenfile.WithLogger(slog.Default()))
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()

	tok := <-api.set
	fmt.Println("client token:", fingerprint(tok), "watcher token:", w.Current().Fingerprint())
	replace("example-token-2")
	tok = <-api.set
	fmt.Println("client token:", fingerprint(tok), "watcher token:", w.Current().Fingerprint())

	cancel()
	fmt.Println("Run returned", <-done)
	// Output:
	// client token: 4e864cc9d096 watcher token: 4e864cc9d096
	// client token: 362d5c0ff65d watcher token: 362d5c0ff65d
	// Run returned <nil>
}

// fingerprint names a token in the example's output without showing it.
func fingerprint(tok string) string { return tokenfile.Snapshot{Token: tok}.Fingerprint() }

// Decide what to do with an expired JWT: Current tells when it expires.
func ExampleSnapshot_Expired() {
	w, err := tokenfile.New("/var/run/ambient/token")
	if err != nil {
		log.Fatal(err)
	}
	// (with w.Run running)
	if s := w.Current(); s.Expired(time.Now()) {
		slog.Warn("the API token has expired; is tokend running?", "token", s)
	}
}
