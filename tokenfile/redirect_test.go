package tokenfile

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// recorder is a real server that records the Authorization header of every
// request it receives and answers with status, or redirects to the URL that
// redirect returns when it is set.
type recorder struct {
	*httptest.Server
	status   int
	redirect func() string

	mu   sync.Mutex // guards auth
	auth []string
}

func newRecorder(t *testing.T, tls bool, status int, redirect func() string) *recorder {
	r := &recorder{status: status, redirect: redirect}
	h := http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.auth = append(r.auth, req.Header.Get("Authorization"))
		r.mu.Unlock()
		if r.redirect != nil && req.URL.Path == "/start" {
			http.Redirect(rw, req, r.redirect(), http.StatusFound)
			return
		}
		rw.WriteHeader(r.status)
	})
	if tls {
		r.Server = httptest.NewTLSServer(h)
	} else {
		r.Server = httptest.NewServer(h)
	}
	t.Cleanup(r.Close)
	return r
}

// seen returns the Authorization headers received so far, in order.
func (r *recorder) seen() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.auth...)
}

// TestTransportRedirects follows redirects between real servers and checks
// where the token went: only to the origin the consumer meant.
func TestTransportRedirects(t *testing.T) {
	tests := []struct {
		name     string
		fromTLS  bool // the first server is https
		toStatus int  // what the redirect target answers
		rotate   bool // the file rotates before the request, so a 401 could be retried
		allow    func(from, to string) []TransportOption
		wantFrom []string // Authorization headers the first server saw
		wantTo   []string // and the redirect target
	}{{
		name: "another host gets no token", toStatus: 200,
		wantFrom: []string{"Bearer tok-A"}, wantTo: []string{""},
	}, {
		name: "https to http gets no token", fromTLS: true, toStatus: 200,
		wantFrom: []string{"Bearer tok-A"}, wantTo: []string{""},
	}, {
		name: "a 401 from another host is not retried with the token", toStatus: 401, rotate: true,
		wantFrom: []string{"Bearer tok-A"}, wantTo: []string{""},
	}, {
		name: "an allowed host gets the token", toStatus: 200,
		allow:    func(from, to string) []TransportOption { return []TransportOption{AllowOrigins(from, to)} },
		wantFrom: []string{"Bearer tok-A"}, wantTo: []string{"Bearer tok-A"},
	}, {
		name: "an allowed host is retried after a 401", toStatus: 401, rotate: true,
		allow:    func(from, to string) []TransportOption { return []TransportOption{AllowOrigins(from, to)} },
		wantFrom: []string{"Bearer tok-A"}, wantTo: []string{"Bearer tok-A", "Bearer tok-B"},
	}, {
		name: "https to an allowed http origin still gets no token", fromTLS: true, toStatus: 200,
		allow:    func(from, to string) []TransportOption { return []TransportOption{AllowOrigins(from, to)} },
		wantFrom: []string{"Bearer tok-A"}, wantTo: []string{""},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "token")
			writeRename(t, path, "tok-A")
			w, err := New(path)
			must(t, err)
			w.reload("")
			to := newRecorder(t, false, tt.toStatus, nil)
			from := newRecorder(t, tt.fromTLS, 200, func() string { return to.URL + "/landed" })
			var opts []TransportOption
			if tt.allow != nil {
				opts = tt.allow(from.URL, to.URL)
			}
			if tt.rotate {
				writeRename(t, path, "tok-B")
			}
			client := &http.Client{Transport: w.Transport(from.Client().Transport, opts...)}
			resp, err := client.Get(from.URL + "/start")
			must(t, err)
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if got := from.seen(); strings.Join(got, ",") != strings.Join(tt.wantFrom, ",") {
				t.Errorf("first server saw tokens %v, want %v", fingerprints(got), fingerprints(tt.wantFrom))
			}
			if got := to.seen(); strings.Join(got, ",") != strings.Join(tt.wantTo, ",") {
				t.Errorf("redirect target saw tokens %v, want %v", fingerprints(got), fingerprints(tt.wantTo))
			}
		})
	}
}

// TestTransportOtherOrigin checks that, by default, the first request fixes
// the one origin the token goes to: a request to another is refused, not
// sent, and the error names the option that allows it.
func TestTransportOtherOrigin(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	writeRename(t, path, "tok-A")
	w, err := New(path)
	must(t, err)
	first := newRecorder(t, false, 200, nil)
	other := newRecorder(t, false, 200, nil)
	client := &http.Client{Transport: w.Transport(nil)}
	for _, u := range []string{first.URL + "/a", strings.Replace(first.URL, "127.0.0.1", "localhost", 1) + "/b", other.URL + "/c"} {
		resp, err := client.Get(u)
		if u == first.URL+"/a" {
			must(t, err)
			_ = resp.Body.Close()
			continue
		}
		if !errors.Is(err, ErrOrigin) || !strings.Contains(err.Error(), "AllowOrigins") {
			t.Errorf("GET to another origin: %v, want ErrOrigin naming AllowOrigins", err)
		}
	}
	if got := first.seen(); len(got) != 1 || got[0] != "Bearer tok-A" {
		t.Errorf("first server saw %v", fingerprints(got))
	}
	if got := other.seen(); len(got) != 0 {
		t.Errorf("the other server saw %d requests", len(got))
	}
	client.CloseIdleConnections()
}

// TestAllowOriginsRejects checks that a malformed origin fails every
// request with an error that names the option and the fix.
func TestAllowOriginsRejects(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	writeRename(t, path, "tok-A")
	w, err := New(path)
	must(t, err)
	srv := newRecorder(t, false, 200, nil)
	for _, bad := range []string{"", "ftp://host", "https://host/path", "https://user@host", "host:443", "https://"} {
		req, err := http.NewRequestWithContext(t.Context(), "GET", srv.URL, nil)
		must(t, err)
		_, err = w.Transport(nil, AllowOrigins(srv.URL, bad)).RoundTrip(req)
		if err == nil || !strings.Contains(err.Error(), "AllowOrigins") || !strings.Contains(err.Error(), "scheme://host") {
			t.Errorf("AllowOrigins(%q): %v", bad, err)
		}
	}
	if got := srv.seen(); len(got) != 0 {
		t.Errorf("the server saw %d requests", len(got))
	}
}

// TestTransportNeverInClear lists an https and an http origin on the same
// host: once the token went there over https, plain http to that host is
// refused, even though it is listed.
func TestTransportNeverInClear(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	writeRename(t, path, "tok-A")
	w, err := New(path)
	must(t, err)
	secure := newRecorder(t, true, 200, nil)
	plain := newRecorder(t, false, 200, nil)
	client := &http.Client{Transport: w.Transport(secure.Client().Transport, AllowOrigins(plain.URL, secure.URL))}
	get := func(u string) error {
		resp, err := client.Get(u)
		if err == nil {
			_ = resp.Body.Close()
		}
		return err
	}
	must(t, get(plain.URL)) // before any https: the list allows it
	must(t, get(secure.URL))
	if err := get(plain.URL); !errors.Is(err, ErrOrigin) || !strings.Contains(err.Error(), "use https") {
		t.Fatalf("plain http after https: %v, want ErrOrigin saying to use https", err)
	}
	if got := plain.seen(); len(got) != 1 {
		t.Fatalf("the plain server saw %d requests, want 1", len(got))
	}
	if got := secure.seen(); len(got) != 1 || got[0] != "Bearer tok-A" {
		t.Fatalf("the https server saw %v", fingerprints(got))
	}
	client.CloseIdleConnections()
}
