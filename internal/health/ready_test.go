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
	"github.com/ambient-code/tokend/internal/tokendir"
)

// testDir returns a token directory in a fresh temporary directory.
func testDir(t testing.TB) *tokendir.Dir {
	return tokendir.New(tokendir.Options{TokenFile: filepath.Join(t.TempDir(), "token"), Mode: 0o640})
}

// TestReadyFollowsWrites: readiness needs a token on disk that tokend
// wrote, as the token directory last verified it, unexpired, and no failed
// write since; it comes back with the next successful write.
func TestReadyFollowsWrites(t *testing.T) {
	dir := testDir(t)
	path := dir.TokenFile()
	now := time.Unix(1_800_000_000, 0)
	m := New(dir.Verified, func() time.Time { return now })
	h := m
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
	if _, err := dir.Store(tok); err != nil {
		t.Fatal(err)
	}
	h.Stored(tok, true)
	step("stored", "")
	h.StoreFailed(errors.New("writing .token.tokend-tmp-1: no space left on device"))
	step("write failed, old token intact", "writing the token file failed: writing .token.tokend-tmp-1: no space left on device")
	h.Stored(tok, false)
	step("written again", "")
	h.Restored(errors.New("restoring the lost token file: no space left on device"))
	step("restore failed", "writing the token file failed: restoring the lost token file: no space left on device")
	h.Restored(nil)
	step("restored", "")
	if err := os.WriteFile(path, []byte("other"), 0o640); err != nil {
		t.Fatal(err)
	}
	step("file replaced, not yet verified", "")
	dir.Verify()
	step("file replaced", "not the token written")
	os.Remove(path)
	dir.Verify()
	step("file removed", "token file unreadable")
	os.WriteFile(path, []byte("tok-1"), 0o640)
	dir.Verify()
	step("file back", "")
	now = now.Add(2 * time.Hour)
	step("expired", "expired at")
}
