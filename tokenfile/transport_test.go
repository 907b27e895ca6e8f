package tokenfile

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ambient-code/tokend/internal/secret"
)

// apiServer accepts requests that carry its current token and answers 401
// to the others. It records the Authorization header and body of each.
type apiServer struct {
	*httptest.Server
	mu     sync.Mutex // guards the fields below
	accept string
	seen   []string // Authorization headers, in order
	bodies []string
}

func newAPIServer(t *testing.T, accept string) *apiServer {
	s := &apiServer{accept: accept}
	s.Server = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		defer s.mu.Unlock()
		s.seen = append(s.seen, r.Header.Get("Authorization"))
		s.bodies = append(s.bodies, string(body))
		if r.Header.Get("Authorization") != "Bearer "+s.accept {
			http.Error(rw, "unauthorized", http.StatusUnauthorized)
			return
		}
		_, _ = io.WriteString(rw, "ok")
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *apiServer) rotate(tok string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accept = tok
}

func (s *apiServer) requests() (headers, bodies []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.seen...), append([]string(nil), s.bodies...)
}

func TestTransport(t *testing.T) {
	tests := []struct {
		name       string
		rotate     bool // rotate file and server before the request
		method     string
		body       func() io.Reader
		wantStatus int
		wantAuth   []string // Authorization headers the server saw
		wantBody   string   // the body every attempt must carry
	}{
		{"sets the token", false, "GET", nil, 200, []string{"Bearer tok-A"}, ""},
		{"retries a GET after a rotation", true, "GET", nil, 200,
			[]string{"Bearer tok-A", "Bearer tok-B"}, ""},
		{"replays a body it can get again", true, "POST",
			func() io.Reader { return strings.NewReader("payload") }, 200,
			[]string{"Bearer tok-A", "Bearer tok-B"}, "payload"},
		{"does not replay a body it cannot get again", true, "POST",
			func() io.Reader { return io.MultiReader(strings.NewReader("payload")) }, 401,
			[]string{"Bearer tok-A"}, "payload"},
		{"does not retry when the file did not change", false, "DELETE", nil, 401,
			[]string{"Bearer tok-A"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "token")
			writeRename(t, path, "tok-A")
			w, err := New(path)
			must(t, err)
			srv := newAPIServer(t, "tok-A")
			if tt.wantStatus == 401 && !tt.rotate {
				srv.rotate("tok-other")
			}
			if tt.rotate {
				w.reload("") // the Watcher holds tok-A; the file and server move on
				writeRename(t, path, "tok-B")
				srv.rotate("tok-B")
			}
			var body io.Reader
			if tt.body != nil {
				body = tt.body()
			}
			req, err := http.NewRequestWithContext(t.Context(), tt.method, srv.URL, body)
			must(t, err)
			req.Header.Set("Authorization", "Bearer caller-set")
			client := &http.Client{Transport: w.Transport(nil)}
			resp, err := client.Do(req)
			must(t, err)
			_ = resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			auth, bodies := srv.requests()
			if strings.Join(auth, ",") != strings.Join(tt.wantAuth, ",") {
				t.Errorf("server saw %d requests (tokens %v), want %d (tokens %v)",
					len(auth), fingerprints(auth), len(tt.wantAuth), fingerprints(tt.wantAuth))
			}
			for i, b := range bodies {
				if b != tt.wantBody {
					t.Errorf("attempt %d carried a body of %d bytes, want %q", i+1, len(b), tt.wantBody)
				}
			}
			if req.Header.Get("Authorization") != "Bearer caller-set" {
				t.Error("the caller's request was modified")
			}
		})
	}
}

// TestTransportNoToken checks that no request leaves without a token.
func TestTransportNoToken(t *testing.T) {
	w, err := New(filepath.Join(t.TempDir(), "missing"))
	must(t, err)
	srv := newAPIServer(t, "x")
	body := &closeRecorder{Reader: bytes.NewReader([]byte("payload"))}
	req, err := http.NewRequestWithContext(t.Context(), "POST", srv.URL, body)
	must(t, err)
	_, err = w.Transport(nil).RoundTrip(req)
	if !errors.Is(err, ErrNotReady) {
		t.Fatalf("RoundTrip without a token: %v", err)
	}
	if auth, _ := srv.requests(); len(auth) != 0 {
		t.Fatalf("%d requests reached the server", len(auth))
	}
	if !body.closed {
		t.Error("the request body was not closed")
	}
}

// TestTransportFollowsRotation runs a client against a server that only
// accepts the newest token, across rotations, with the Watcher running.
func TestTransportFollowsRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	writeRename(t, path, "rot-0")
	h := newHarness(t, path)
	h.start("rot-0", "rot-1", "rot-2", "rot-3")
	h.expect("rot-0")
	srv := newAPIServer(t, "rot-0")
	client := &http.Client{Transport: h.w.Transport(nil)}
	for _, tok := range []string{"rot-1", "rot-2", "rot-3"} {
		writeRename(t, path, tok)
		srv.rotate(tok) // the server moves on before the Watcher may have
		resp, err := client.Get(srv.URL)
		must(t, err)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d after rotating", resp.StatusCode)
		}
		h.expect(tok) // the callback still sees every change, once
	}
	client.CloseIdleConnections()
}

type closeRecorder struct {
	io.Reader
	closed bool
}

func (c *closeRecorder) Close() error { c.closed = true; return nil }

// fingerprints names Authorization headers without showing them.
func fingerprints(headers []string) []string {
	out := make([]string, len(headers))
	for i, h := range headers {
		out[i] = secret.Fingerprint(strings.TrimPrefix(h, "Bearer "))
	}
	return out
}
