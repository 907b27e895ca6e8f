package tokendir

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ambient-code/tokend/internal/exchange"
	"github.com/ambient-code/tokend/internal/secret"
)

const mode = 0o640

// world is a token directory with the JSON output, on a settable clock.
type world struct {
	dir        string
	token, doc string // the outputs' paths
	now        time.Time
	d          *Dir
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{dir: t.TempDir(), now: time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)}
	w.token, w.doc = filepath.Join(w.dir, "token"), filepath.Join(w.dir, "token.json")
	w.d = w.open()
	return w
}

// open returns a fresh Dir on w's files, as a restarted tokend makes one.
func (w *world) open() *Dir {
	return New(Options{TokenFile: w.token, Mode: mode, Outputs: []Output{JSON(w.doc)}, Now: func() time.Time { return w.now }})
}

func tok(v string, exp time.Time) exchange.Token {
	return exchange.Token{Value: secret.New(v), Expiry: exp}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func stat(t *testing.T, path string) os.FileInfo {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi
}

func decode(t *testing.T, path string) map[string]string {
	t.Helper()
	var m map[string]string
	if err := json.Unmarshal([]byte(read(t, path)), &m); err != nil {
		t.Fatalf("%s is not a JSON object of strings: %v", path, err)
	}
	return m
}

func store(t *testing.T, d *Dir, tk exchange.Token, wantChanged bool) {
	t.Helper()
	changed, err := d.Store(tk)
	if err != nil {
		t.Fatal(err)
	}
	if changed != wantChanged {
		t.Fatalf("Store changed = %v, want %v", changed, wantChanged)
	}
}

// TestStoreWritesBothOutputsOnlyOnChange: the token file holds the token's
// bytes, the JSON document the token, its expiry, fingerprint and time of
// writing, both with the mode; storing the same token again writes
// nothing (the files keep their inodes), and so does a restarted tokend.
func TestStoreWritesBothOutputsOnlyOnChange(t *testing.T) {
	w := newWorld(t)
	exp := w.now.Add(15 * time.Minute)
	store(t, w.d, tok("tok-1", exp), true)
	if got := read(t, w.token); got != "tok-1" {
		t.Fatalf("token file holds %q", got)
	}
	want := map[string]string{"token": "tok-1", "expires_at": "2026-11-29T12:15:00Z",
		"fingerprint": secret.Fingerprint("tok-1"), "written_at": "2026-11-29T12:00:00Z"}
	got := decode(t, w.doc)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("JSON %s = %q, want %q", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("JSON document %v, want exactly the fields %v", got, want)
	}
	for _, p := range []string{w.token, w.doc} {
		if m := stat(t, p).Mode().Perm(); m != mode {
			t.Errorf("%s has mode %o, want %o", p, m, mode)
		}
	}
	before := []os.FileInfo{stat(t, w.token), stat(t, w.doc)}
	w.now = w.now.Add(time.Minute)
	store(t, w.d, tok("tok-1", exp), false)
	store(t, w.open(), tok("tok-1", exp), false)
	for i, p := range []string{w.token, w.doc} {
		if !os.SameFile(before[i], stat(t, p)) {
			t.Errorf("%s was replaced for the same token", p)
		}
	}
	if n := len(entries(t, w.dir)); n != 2 {
		t.Errorf("the directory holds %d entries, want the two outputs only", n)
	}
}

// TestJSONFollowsTheExpiry: the same token with a new expiry rewrites the
// document (and not the token file); an unknown expiry is omitted.
func TestJSONFollowsTheExpiry(t *testing.T) {
	w := newWorld(t)
	store(t, w.d, tok("tok-1", w.now.Add(time.Minute)), true)
	tokenBefore := stat(t, w.token)
	w.now = w.now.Add(10 * time.Second)
	store(t, w.d, tok("tok-1", w.now.Add(time.Hour)), true)
	if !os.SameFile(tokenBefore, stat(t, w.token)) {
		t.Error("the token file was replaced though the token did not change")
	}
	if got := decode(t, w.doc); got["expires_at"] != "2026-11-29T13:00:10Z" || got["written_at"] != "2026-11-29T12:00:10Z" {
		t.Errorf("after a new expiry: %v", got)
	}
	store(t, w.d, tok("tok-2", time.Time{}), true)
	if got := decode(t, w.doc); got["token"] != "tok-2" || strings.Contains(read(t, w.doc), "expires_at") {
		t.Errorf("unknown expiry: document %v, want tok-2 without expires_at", got)
	}
}

// TestVerifyAndRestore: Verify finds a removed or replaced output, names it
// without its content, and keeps the verdict for Verified; storing the
// held token again restores the file byte for byte.
func TestVerifyAndRestore(t *testing.T) {
	w := newWorld(t)
	held := tok("tok-secret-1", w.now.Add(time.Hour))
	if err := w.d.Verified(); !errors.Is(err, ErrNotWritten) {
		t.Fatalf("Verified before any store = %v, want ErrNotWritten", err)
	}
	store(t, w.d, held, true)
	doc := read(t, w.doc)
	if err := w.d.Verify(); err != nil || w.d.Verified() != nil {
		t.Fatalf("intact: Verify %v, Verified %v", err, w.d.Verified())
	}
	steps := []struct {
		name, want string
		damage     func() error
	}{
		{"JSON removed", "JSON file unreadable", func() error { return os.Remove(w.doc) }},
		{"token replaced", "token file " + w.token + " holds " + secret.Fingerprint("other"), func() error { return os.WriteFile(w.token, []byte("other"), mode) }},
		{"token removed", "token file unreadable", func() error { return os.Remove(w.token) }},
	}
	for _, s := range steps {
		if err := s.damage(); err != nil {
			t.Fatal(err)
		}
		err := w.d.Verify()
		if err == nil || !strings.Contains(err.Error(), s.want) {
			t.Fatalf("%s: Verify = %v, want %q", s.name, err, s.want)
		}
		if strings.Contains(err.Error(), "tok-secret") {
			t.Fatalf("%s: the error holds the token: %v", s.name, err)
		}
		if v := w.d.Verified(); v == nil || v.Error() != err.Error() {
			t.Fatalf("%s: Verified = %v, want the last verdict", s.name, v)
		}
		w.now = w.now.Add(time.Minute)
		store(t, w.d, held, true)
		if read(t, w.token) != "tok-secret-1" || read(t, w.doc) != doc {
			t.Fatalf("%s: not restored as it was", s.name)
		}
		if err := w.d.Verify(); err != nil {
			t.Fatalf("%s: after the restore: %v", s.name, err)
		}
	}
}

// TestStoreFailsPerOutput: an output whose directory is gone fails the
// store, naming it, while the token file is still written.
func TestStoreFailsPerOutput(t *testing.T) {
	base := t.TempDir()
	token, doc := filepath.Join(base, "token"), filepath.Join(base, "gone", "token.json")
	d := New(Options{TokenFile: token, Mode: mode, Outputs: []Output{JSON(doc)}})
	changed, err := d.Store(tok("tok-1", time.Time{}))
	if err == nil || !strings.Contains(err.Error(), filepath.Dir(doc)) || !changed {
		t.Fatalf("Store = %v, %v; want changed and an error naming %s", changed, err, filepath.Dir(doc))
	}
	if read(t, token) != "tok-1" {
		t.Fatal("the token file was not written")
	}
	if err := d.Verified(); !errors.Is(err, ErrNotWritten) {
		t.Errorf("Verified after a failed store = %v, want no good verdict", err)
	}
}

// TestCleanTempAndRemove: temporary files a crash left beside both
// outputs are removed at start; Remove removes both outputs and nothing
// else.
func TestCleanTempAndRemove(t *testing.T) {
	w := newWorld(t)
	for _, name := range []string{".token.tokend-tmp-1", ".token.json.tokend-tmp-2", "app.pid"} {
		if err := os.WriteFile(filepath.Join(w.dir, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := w.d.CleanTemp(); n != 2 || err != nil {
		t.Fatalf("CleanTemp = %d, %v; want 2 removed", n, err)
	}
	store(t, w.d, tok("tok-1", time.Time{}), true)
	if err := w.d.Remove(); err != nil {
		t.Fatal(err)
	}
	if got := entries(t, w.dir); len(got) != 1 || got[0] != "app.pid" {
		t.Errorf("after Remove the directory holds %v, want app.pid only", got)
	}
	if err := w.d.Remove(); err != nil {
		t.Errorf("Remove of removed outputs: %v", err)
	}
}

func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}
