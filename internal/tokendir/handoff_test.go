package tokendir

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ambient-code/tokend/internal/secret"
)

// TestHandoffRoundTrip: init's handoff, beside the token file with its
// mode and without the token, gives a later Dir on the same files (run)
// the token, its expiry to the nanosecond, when it was written and by
// which issuer; it is taken once.
func TestHandoffRoundTrip(t *testing.T) {
	w := newWorld(t)
	exp := w.now.Add(15*time.Minute + 500*time.Millisecond)
	store(t, w.d, tok("tok-secret-1", exp), true)
	if err := w.d.WriteHandoff(tok("tok-secret-1", exp), "encrypted-session http://cp/token"); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(w.dir, ".token.tokend-init")
	if fi := stat(t, path); fi.Mode().Perm() != mode {
		t.Errorf("handoff mode %v, want %v", fi.Mode().Perm(), os.FileMode(mode))
	}
	if strings.Contains(read(t, path), "tok-secret-1") {
		t.Fatal("the handoff holds the token")
	}

	w.now = w.now.Add(time.Second)
	h, value, err := w.open().TakeHandoff()
	if err != nil {
		t.Fatal(err)
	}
	want := Handoff{Fingerprint: secret.Fingerprint("tok-secret-1"), Expiry: exp, WrittenAt: exp.Add(-15*time.Minute - 500*time.Millisecond), Issuer: "encrypted-session http://cp/token"}
	if !h.Expiry.Equal(want.Expiry) || !h.WrittenAt.Equal(want.WrittenAt) || h.Fingerprint != want.Fingerprint || h.Issuer != want.Issuer {
		t.Errorf("TakeHandoff = %+v, want %+v", h, want)
	}
	if value.Reveal() != "tok-secret-1" {
		t.Errorf("TakeHandoff gave token %s, want the token file's", value.Fingerprint())
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the handoff is still there after TakeHandoff: %v", err)
	}
	if _, _, err := w.open().TakeHandoff(); !errors.Is(err, ErrNoHandoff) {
		t.Errorf("a second TakeHandoff = %v, want ErrNoHandoff", err)
	}
}

// TestHandoffRefused: a handoff that describes another token than the
// file holds, or that is not init's JSON, is refused with an error naming
// the cause (never the token), and removed all the same.
func TestHandoffRefused(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, w *world)
		want   string
	}{
		{"token file rewritten since", func(t *testing.T, w *world) { store(t, w.d, tok("tok-secret-2", time.Time{}), true) }, "not the token " + secret.Fingerprint("tok-secret-1")},
		{"not JSON", func(t *testing.T, w *world) {
			must(t, os.WriteFile(filepath.Join(w.dir, ".token.tokend-init"), []byte("{"), mode))
		}, "not the JSON tokend init writes"},
		{"token file removed", func(t *testing.T, w *world) { must(t, os.Remove(w.token)) }, "token file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			store(t, w.d, tok("tok-secret-1", w.now.Add(time.Hour)), true)
			must(t, w.d.WriteHandoff(tok("tok-secret-1", w.now.Add(time.Hour)), "issuer"))
			tc.damage(t, w)
			_, _, err := w.open().TakeHandoff()
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "tok-secret") {
				t.Fatalf("TakeHandoff = %v, want an error saying %q, without the token", err, tc.want)
			}
			if _, err := os.Lstat(filepath.Join(w.dir, ".token.tokend-init")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the refused handoff is still there: %v", err)
			}
		})
	}
}
