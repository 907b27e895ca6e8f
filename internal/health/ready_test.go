package health

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ambient-code/tokend/internal/exchange"
	"github.com/ambient-code/tokend/internal/secret"
)

// TestReadyFollowsWrites: readiness needs a token on disk that tokend
// wrote, unexpired, and no failed write since; it comes back with the next
// successful write.
func TestReadyFollowsWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	now := time.Unix(1_800_000_000, 0)
	m := New(path, func() time.Time { return now })
	h := m.Hooks()
	tok := exchange.Token{Value: secret.New("tok-1"), Expiry: now.Add(time.Hour)}

	step := func(name, want string) {
		t.Helper()
		err := m.ready()
		switch {
		case want == "" && err != nil:
			t.Fatalf("%s: not ready: %v", name, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Fatalf("%s: ready = %v, want an error with %q", name, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "tok-1") {
			t.Fatalf("%s: the readiness error holds the token", name)
		}
	}
	step("start", "no token written yet")
	if err := os.WriteFile(path, []byte("tok-1"), 0o640); err != nil {
		t.Fatal(err)
	}
	h.Stored(tok, true)
	step("stored", "")
	h.StoreFailed(errors.New("filewriter: writing .token.tokend-tmp-1: no space left on device"))
	step("write failed, old token intact", "writing the token file failed: filewriter: writing .token.tokend-tmp-1: no space left on device")
	h.Stored(tok, false)
	step("written again", "")
	if err := os.WriteFile(path, []byte("other"), 0o640); err != nil {
		t.Fatal(err)
	}
	step("file replaced", "not the token written")
	os.Remove(path)
	step("file removed", "token file unreadable")
	os.WriteFile(path, []byte("tok-1"), 0o640)
	now = now.Add(2 * time.Hour)
	step("expired", "expired at")
}
