package tokenfile

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
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
