package proxy

import (
	"context"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestUnixSocket: the proxy serves on a Unix socket, mode 0660, replacing a
// socket left by an earlier run, and removes it when it stops.
func TestUnixSocket(t *testing.T) {
	up, rec := echoUpstream(t)
	path := filepath.Join(t.TempDir(), "proxy.sock")
	stale, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close() // leaves the socket file behind, as a crash would

	ln, err := ListenMode("unix:"+path, 0o660)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o660 {
		t.Fatalf("socket file: %v %v, want a socket with mode %o", fi.Mode(), err, 0o660)
	}
	src := newSource()
	src.set("tok-unix", noExpiry)
	p, err := New(Config{Upstream: mustURL(t, up.URL)}, src)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx, ln) }()

	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		},
	}}
	resp, err := client.Get("http://proxy/over-unix")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(b) != "ok" {
		t.Fatalf("got %d %q", resp.StatusCode, b)
	}
	if got := rec.all(); len(got) != 1 || got[0].header.Get("Authorization") != "Bearer tok-unix" || got[0].uri != "/over-unix" {
		t.Fatalf("upstream got %+v", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("the socket is still there after Serve returned: %v", err)
	}
}

// TestListenRefuses: a non-loopback TCP address, a malformed one, an empty
// socket path and a regular file in the socket's place are refused with an
// error naming --proxy-listen and the fix.
func TestListenRefuses(t *testing.T) {
	file := filepath.Join(t.TempDir(), "not-a-socket")
	if err := os.WriteFile(file, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ addr, fix string }{
		{"0.0.0.0:0", "use 127.0.0.1:PORT"},
		{":0", "use 127.0.0.1:PORT"},
		{"[::]:0", "use 127.0.0.1:PORT"},
		{"192.0.2.1:8080", "use 127.0.0.1:PORT"},
		{"api.example:8080", "use 127.0.0.1:PORT"},
		{"127.0.0.1", "HOST:PORT"},
		{"unix:", "use unix:PATH"},
		{"unix:" + file, "remove it or choose another path"},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			ln, err := ListenMode(tc.addr, 0o660)
			if err == nil {
				ln.Close()
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), "--proxy-listen") || !strings.Contains(err.Error(), tc.fix) {
				t.Errorf("error %q does not name --proxy-listen and %q", err, tc.fix)
			}
		})
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "keep me" {
		t.Errorf("the file in the way was touched: %q %v", b, err)
	}
}

// TestListenLoopback: loopback addresses are accepted.
func TestListenLoopback(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:0", "localhost:0", "127.0.0.2:0"} {
		ln, err := ListenMode(addr, 0o660)
		if err != nil {
			t.Errorf("%s: %v", addr, err)
			continue
		}
		ln.Close()
	}
}

// TestConfigErrors: every bad setting is reported at once, each naming the
// setting and the fix, and user info never appears in an error.
func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct{ upstream, want string }{
		{"ftp://api.example", "use an http:// or https:// URL"},
		{"https://", "has no host"},
		{"https://user:hunter2@api.example", "remove it"},
		{"https://api.example/?q=1", "base URL only"},
		{"api.example:443", "use an http:// or https:// URL"},
		{"%zz", "is not a URL"},
	} {
		_, err := ParseUpstream(tc.upstream)
		if err == nil || !strings.Contains(err.Error(), "--proxy-upstream") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one naming --proxy-upstream and %q", tc.upstream, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: the error holds the password", tc.upstream)
		}
	}
	_, err := New(Config{MaxConcurrent: -1}, newSource())
	if err == nil || !strings.Contains(err.Error(), "AMBIENT_API_SERVER_URL") || !strings.Contains(err.Error(), "negative") {
		t.Errorf("New: %v, want both problems", err)
	}
	if _, err := New(Config{Upstream: mustURL(t, "http://api.example")}, nil); err == nil {
		t.Error("New accepted a nil Source")
	}
}
