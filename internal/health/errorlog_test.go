package health

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"sync"
	"testing"
	"testing/synctest"
)

// tempError is an Accept failure the HTTP server logs and retries.
type tempError struct{}

func (tempError) Error() string   { return "accept: too many open files" }
func (tempError) Timeout() bool   { return false }
func (tempError) Temporary() bool { return true }

// failOnce fails its first Accept with a temporary error.
type failOnce struct {
	*pipeListener
	once sync.Once
}

func (l *failOnce) Accept() (net.Conn, error) {
	var failed bool
	l.once.Do(func() { failed = true })
	if failed {
		return nil, tempError{}
	}
	return l.pipeListener.Accept()
}

// syncWriter is a bytes.Buffer safe for the server's goroutines.
type syncWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// TestServeLogsThroughTheConfiguredHandler: the HTTP server's own errors
// go through Serve's logger, so a JSON log stays JSON.
func TestServeLogsThroughTheConfiguredHandler(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out syncWriter
		m := New(testDir(t).Verified, nil)
		ln := &failOnce{pipeListener: newPipeListener()}
		ctx, cancel := context.WithCancel(t.Context())
		served := make(chan error, 1)
		go func() { served <- m.Serve(ctx, ln, slog.New(slog.NewJSONHandler(&out, nil))) }()
		synctest.Wait()
		out.mu.Lock()
		logged := out.b.String()
		out.mu.Unlock()
		var line struct{ Level, Msg string }
		if err := json.Unmarshal([]byte(logged), &line); err != nil {
			t.Fatalf("server error not logged as one JSON line: %v: %q", err, logged)
		}
		if line.Level != "WARN" || !bytes.Contains([]byte(line.Msg), []byte("too many open files")) {
			t.Errorf("logged %+v", line)
		}
		cancel()
		if err := <-served; err != nil {
			t.Fatal(err)
		}
	})
}
