package tokendir

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ambient-code/tokend/internal/tokenbytes"
)

// TestWithdrawAndRestore: a withdrawal replaces the token in every output
// (the token file holds the record package tokenfile reads as "no token",
// the JSON document no token field), the same withdrawal again writes
// nothing, and the next token restores both.
func TestWithdrawAndRestore(t *testing.T) {
	w := newWorld(t)
	exp := w.now.Add(time.Hour)
	store(t, w.d, tok("tok-before", exp), true)

	const reason = "token endpoint answered 403 Forbidden: runner access revoked"
	changed, err := w.d.Withdraw(reason)
	if err != nil || !changed {
		t.Fatalf("Withdraw = %v, %v; want changed", changed, err)
	}
	if _, err := tokenbytes.FromFile([]byte(read(t, w.token))); !errors.Is(err, tokenbytes.ErrWithdrawn) || !strings.Contains(err.Error(), reason) {
		t.Errorf("token file read as %v, want a withdrawal naming the reason", err)
	}
	doc := decode(t, w.doc)
	if _, ok := doc["token"]; ok || doc["withdrawn"] != reason || doc["withdrawn_at"] != "2026-11-29T12:00:00Z" {
		t.Errorf("JSON document %v, want no token, the reason and its time", doc)
	}
	if err := w.d.Verified(); !errors.Is(err, ErrWithdrawn) || !strings.Contains(err.Error(), reason) {
		t.Errorf("Verified = %v, want the withdrawal", err)
	}

	w.now = w.now.Add(time.Minute)
	before := stat(t, w.token).ModTime()
	if changed, err := w.d.Withdraw(reason); err != nil || changed {
		t.Errorf("the same withdrawal again: changed %v, err %v; want nothing written", changed, err)
	}
	if decode(t, w.doc)["withdrawn_at"] != "2026-11-29T12:00:00Z" || !stat(t, w.token).ModTime().Equal(before) {
		t.Errorf("the same withdrawal again rewrote a file")
	}

	store(t, w.d, tok("tok-before", exp), true)
	if got := read(t, w.token); got != "tok-before" {
		t.Errorf("token file after restore = %q", got)
	}
	if doc := decode(t, w.doc); doc["token"] != "tok-before" || doc["withdrawn"] != "" {
		t.Errorf("JSON document after restore %v, want the token", doc)
	}
	if err := w.d.Verified(); err != nil {
		t.Errorf("Verified after restore = %v", err)
	}
}

// TestWithdrawWritesNoFileWhereThereWasNone: a refusal before any token
// leaves the outputs absent (a consumer waiting for the first token keeps
// waiting), while a token file a previous run left is withdrawn.
func TestWithdrawWritesNoFileWhereThereWasNone(t *testing.T) {
	w := newWorld(t)
	if changed, err := w.d.Withdraw("refused"); err != nil || changed {
		t.Fatalf("Withdraw = %v, %v; want nothing written", changed, err)
	}
	for _, p := range []string{w.token, w.doc} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: %v, want it absent", p, err)
		}
	}
	if err := os.WriteFile(w.token, []byte("tok-left-by-a-previous-run"), 0o640); err != nil {
		t.Fatal(err)
	}
	if changed, err := w.open().Withdraw("refused"); err != nil || !changed {
		t.Fatalf("Withdraw over a previous run's token = %v, %v; want it written", changed, err)
	}
	if _, err := tokenbytes.FromFile([]byte(read(t, w.token))); !errors.Is(err, tokenbytes.ErrWithdrawn) {
		t.Errorf("a previous run's token was not withdrawn: %v", err)
	}
}
