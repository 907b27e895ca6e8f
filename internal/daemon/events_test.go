package daemon_test

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ambient-code/tokend/internal/daemon"
	"github.com/ambient-code/tokend/internal/exchange"
	"github.com/ambient-code/tokend/internal/secret"
	"github.com/ambient-code/tokend/test/testkit"
	"github.com/ambient-code/tokend/test/testkit/daemonevents"
)

// exchangeFunc adapts a function to exchange.Exchanger.
type exchangeFunc func(context.Context) (exchange.Token, error)

func (f exchangeFunc) Exchange(ctx context.Context) (exchange.Token, error) { return f(ctx) }

// TestObserveInit: Deps.Observer sees init's steps in order (a failed
// exchange, the wait, the stored token) and no event shows the token.
func TestObserveInit(t *testing.T) {
	const tok = "s3cret-observed-token"
	calls := 0
	ex := exchangeFunc(func(context.Context) (exchange.Token, error) {
		calls++
		if calls == 1 {
			return exchange.Token{}, &exchange.StatusError{StatusCode: 503}
		}
		return exchange.Token{Value: secret.New(tok)}, nil
	})
	cfg := testConfig("http://127.0.0.1:1/token", testkit.RSAKey().Public().(*rsa.PublicKey), "observe-session-0001", filepath.Join(t.TempDir(), "token"))
	cfg.Command, cfg.MaxBackoff = "init", time.Millisecond
	var events testkit.Log[daemonevents.Event]
	d := daemonevents.Observe(daemon.Deps{Logger: slog.New(slog.DiscardHandler), Exchanger: ex}, events.Add)
	if err := daemon.Init(t.Context(), cfg, d); err != nil {
		t.Fatal(err)
	}
	var kinds []daemonevents.EventKind
	for _, e := range events.All() {
		kinds = append(kinds, e.Kind)
		if strings.Contains(fmt.Sprint(e), tok) {
			t.Errorf("event %v shows the token", e)
		}
	}
	want := []daemonevents.EventKind{daemonevents.ExchangeFailed, daemonevents.WaitStarted, daemonevents.TokenStored}
	if fmt.Sprint(kinds) != fmt.Sprint(want) {
		t.Fatalf("events %v, want %v", events.All(), want)
	}
	all := events.All()
	var se *exchange.StatusError
	if !errors.As(all[0].Err, &se) || se.StatusCode != 503 {
		t.Errorf("ExchangeFailed carries %v, want the 503", all[0].Err)
	}
	if e := all[2]; e.Fingerprint != secret.Fingerprint(tok) || !e.Changed {
		t.Errorf("TokenStored %v, want the token's fingerprint, changed", e)
	}
}
