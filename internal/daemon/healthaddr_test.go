package daemon_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/ambient-code/tokend/internal/daemon"
	"github.com/ambient-code/tokend/internal/exchange"
	"github.com/ambient-code/tokend/internal/secret"
	"github.com/ambient-code/tokend/test/testkit/daemonevents"
)

// signalExchanger hands out one fixed token and reports each call.
type signalExchanger struct{ called chan struct{} }

func (e signalExchanger) Exchange(context.Context) (exchange.Token, error) {
	select {
	case e.called <- struct{}{}:
	default:
	}
	return exchange.Token{Value: secret.New("opaque-token-for-health-addr-test")}, nil
}

// TestRunWithoutHealthAddr: TOKEND_HEALTH_ADDR set but empty means no
// health server at all. The listen decision is made before the first
// exchange, so once the exchanger is called, a listener that was never
// announced was never opened.
func TestRunWithoutHealthAddr(t *testing.T) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig("http://ambient-control-plane.ns.svc:8080/token", &k.PublicKey, "session-health-addr-test", filepath.Join(t.TempDir(), "token"))
	ex := signalExchanger{called: make(chan struct{}, 1)}
	var logs bytes.Buffer
	d := daemonevents.Observe(daemon.Deps{
		Logger:    slog.New(slog.NewTextHandler(&logs, nil)),
		Exchanger: ex,
	}, func(e daemonevents.Event) {
		if e.Kind == daemonevents.HealthListening {
			t.Errorf("health server listening on %v", e.Addr)
		}
	})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- daemon.Run(ctx, cfg, d) }()
	select {
	case <-ex.called:
	case err := <-done:
		t.Fatalf("Run ended before exchanging: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(logs.Bytes(), []byte("health server listening")) {
		t.Error("log announces a health server")
	}
}
