package tokenfile

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ambient-code/tokend/internal/tokenbytes"
)

// TestWaitReasons checks that Wait's error says why no token came, in a
// form errors.Is can test.
func TestWaitReasons(t *testing.T) {
	tests := []struct {
		name    string
		content *string // nil: no file
		run     bool
		want    error
	}{
		{"never ran", nil, false, ErrNotReady},
		{"no file", nil, true, ErrMissing},
		{"empty file", ptr(""), true, ErrEmpty},
		{"not a token", ptr("two words"), true, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "token")
			if tt.content != nil {
				writeRename(t, path, *tt.content)
			}
			h := newHarness(t, path)
			if tt.run {
				h.start()
				h.waitFor("read the file", func(s Snapshot) bool { return s.Err != ErrNotReady })
			}
			ctx, cancel := context.WithTimeoutCause(t.Context(), 0, errors.New("gave up"))
			defer cancel()
			_, err := h.w.Wait(ctx)
			if !errors.Is(err, tt.want) || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Wait: %v; want it to match %v and context.DeadlineExceeded", err, tt.want)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// TestNoTokenErrorsSayTheFix checks the text of Wait's error and of a
// request the Transport refuses without a token: the package prefix once,
// the path once, why there is no token and what to change, and what
// errors.Is needs.
func TestNoTokenErrorsSayTheFix(t *testing.T) {
	tests := []struct {
		name    string
		content *string // nil: no file
		run     bool
		want    error
		says    string
		// sendWant and sendSays, when set, replace want and says for the
		// Transport, which reads the file itself when it holds no token.
		sendWant error
		sendSays string
	}{
		{"never ran", nil, false, ErrNotReady, "Fix: start it with go w.Run(ctx)", ErrMissing, "does not exist"},
		{"no file", nil, true, ErrMissing, "does not exist. Fix: check that tokend writes this path", nil, ""},
		{"empty file", ptr(""), true, ErrEmpty, "is empty. Fix:", nil, ""},
		{"not a token", ptr("two words"), true, ErrInvalid, "does not hold a token (a whitespace, control or non-ASCII byte at offset 3). Fix:", nil, ""},
		{"withdrawn", ptr(string(tokenbytes.Withdrawal("the control plane refused the credential (403)"))), true,
			ErrWithdrawn, "tokend withdrew the token (the control plane refused the credential (403)). Fix:", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "token")
			if tt.content != nil {
				writeRename(t, path, *tt.content)
			}
			h := newHarness(t, path)
			if tt.run {
				h.start()
				h.waitFor("read the file", func(s Snapshot) bool { return s.Err != ErrNotReady })
			}
			ctx, cancel := context.WithTimeoutCause(t.Context(), 0, errors.New("gave up"))
			defer cancel()
			_, waitErr := h.w.Wait(ctx)
			req, err := http.NewRequestWithContext(t.Context(), "GET", "https://api.example/v1/x?q=1", nil)
			must(t, err)
			_, sendErr := h.w.Transport(nil).RoundTrip(req)
			sendWant, sendSays := tt.want, tt.says
			if tt.sendWant != nil {
				sendWant, sendSays = tt.sendWant, tt.sendSays
			}
			for _, c := range []struct {
				err         error
				start, says string
				want        []error
			}{
				{waitErr, "tokenfile: Wait ended without a token (context deadline exceeded: gave up): ", tt.says,
					[]error{tt.want, context.DeadlineExceeded}},
				{sendErr, "tokenfile: GET https://api.example/v1/x?q=1 not sent without a token: ", sendSays,
					[]error{sendWant, ErrNotReady}},
			} {
				if c.err == nil {
					t.Fatalf("no error; want one starting %q", c.start)
				}
				msg := c.err.Error()
				if !strings.HasPrefix(msg, c.start) || !strings.Contains(msg, c.says) {
					t.Errorf("error %q\nwant it to start %q and say %q", msg, c.start, c.says)
				}
				if n := strings.Count(msg, "tokenfile:"); n != 1 {
					t.Errorf("error %q says \"tokenfile:\" %d times, want once", msg, n)
				}
				if n := strings.Count(msg, path); tt.want != ErrWithdrawn && n != 1 {
					t.Errorf("error %q names the path %d times, want once", msg, n)
				}
				for _, want := range c.want {
					if !errors.Is(c.err, want) {
						t.Errorf("error %q does not match %v", msg, want)
					}
				}
			}
		})
	}
}
