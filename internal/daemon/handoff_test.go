package daemon_test

import (
	"context"
	"crypto/rsa"
	"log/slog"
	"net/http/httptest"
	neturl "net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ambient-code/tokend/internal/daemon"
	"github.com/ambient-code/tokend/internal/secret"
	"github.com/ambient-code/tokend/test/fakeissuer"
	"github.com/ambient-code/tokend/test/testkit"
	"github.com/ambient-code/tokend/test/testkit/daemonevents"
)

// TestRunAdoptsTheTokenInitWrote: init, then run on the same token
// directory, cost the issuer one exchange when run can know that the token
// on disk is init's and when it expires: run stores it unchanged, and its
// first wait follows without an exchange. Wherever it cannot, run
// exchanges at start as before, and says why.
func TestRunAdoptsTheTokenInitWrote(t *testing.T) {
	for _, tc := range []struct {
		name     string
		opaque   bool                             // init's token has no known expiry
		runAt    time.Duration                    // run's clock, ahead of init's
		tweak    func(*daemon.Config, *testing.T) // run's configuration, or its files
		requests int64                            // by the first wait of run
		reason   string                           // logged when run exchanges
	}{
		{name: "adopted", runAt: time.Second, requests: 1},
		{name: "expiry unknown", opaque: true, requests: 2, reason: "its expiry is unknown"},
		{name: "another issuer", tweak: func(c *daemon.Config, _ *testing.T) { c.TokenURL, _ = neturl.Parse("http://cp.example:8080/token") },
			requests: 2, reason: "run asks encrypted-session http://cp.example:8080/token"},
		{name: "token file replaced", tweak: func(c *daemon.Config, t *testing.T) {
			if err := os.WriteFile(c.TokenFile, []byte(testkit.JWTExpiring(time.Now().Add(time.Hour))), 0o640); err != nil {
				t.Fatal(err)
			}
		}, requests: 2, reason: "not the token"},
		{name: "written more than an interval ago", runAt: 5*time.Minute + time.Second, requests: 2, reason: "not within the refresh interval"},
		{name: "written in the future", runAt: -time.Minute, requests: 2, reason: "not within the refresh interval"},
		{name: "half its life gone", runAt: 8 * time.Minute, tweak: func(c *daemon.Config, _ *testing.T) { c.RefreshInterval = 10 * time.Minute },
			requests: 2, reason: "less than half its life"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			iss := &fakeissuer.Issuer{Key: testkit.RSAKey(), CacheFloor: -1}
			if tc.opaque {
				iss.Push(fakeissuer.Body(`{"token":"opaque-token-1"}`))
			}
			srv := httptest.NewServer(iss)
			t.Cleanup(srv.Close)
			cfg := testConfig(srv.URL+"/token", testkit.RSAKey().Public().(*rsa.PublicKey), "handoff-session-0001", filepath.Join(t.TempDir(), "token"))
			cfg.Command = "init"
			if err := daemon.Init(t.Context(), cfg, daemon.Deps{Logger: slog.New(slog.DiscardHandler)}); err != nil {
				t.Fatal(err)
			}
			initTok, err := os.ReadFile(cfg.TokenFile)
			if err != nil {
				t.Fatal(err)
			}

			cfg.Command = "run"
			if tc.tweak != nil {
				tc.tweak(cfg, t)
			}
			onDisk, _ := os.ReadFile(cfg.TokenFile)
			var logs testkit.Buffer
			var events testkit.Log[daemonevents.Event]
			d := daemonevents.Observe(daemon.Deps{Logger: slog.New(slog.NewTextHandler(&logs, nil)),
				Now: func() time.Time { return time.Now().Add(tc.runAt) }}, events.Add)
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() { done <- daemon.Run(ctx, cfg, d) }()
			cur := events.Cursor()
			cur.Stop = done
			stored, _ := cur.Next(t, "the first token stored", func(e daemonevents.Event) bool { return e.Kind == daemonevents.TokenStored })
			cur.Next(t, "the first wait", func(e daemonevents.Event) bool { return e.Kind == daemonevents.WaitStarted })
			cancel()
			if err := testkit.Await(t, "run to return", done); err != nil {
				t.Fatal(err)
			}

			if n := iss.Requests(); n != tc.requests {
				t.Errorf("%d requests to the issuer by run's first wait, want %d\n%s", n, tc.requests, logs.String())
			}
			if tc.reason == "" {
				if stored.Changed || stored.Fingerprint != secret.Fingerprint(string(initTok)) || !strings.Contains(logs.String(), "adopted the token tokend init wrote") {
					t.Errorf("run stored %v, want init's token %s unchanged, and said so\n%s", stored, secret.Fingerprint(string(initTok)), logs.String())
				}
			} else if !strings.Contains(logs.String(), "not adopting the token tokend init wrote") || !strings.Contains(logs.String(), tc.reason) {
				t.Errorf("run's log does not say it exchanged because %q:\n%s", tc.reason, logs.String())
			}
			if _, err := os.Lstat(filepath.Join(filepath.Dir(cfg.TokenFile), ".token.tokend-init")); !os.IsNotExist(err) {
				t.Errorf("init's handoff is still there after run started: %v", err)
			}
			for _, tok := range []string{string(initTok), string(onDisk)} {
				if strings.Contains(logs.String(), tok) {
					t.Fatal("run's log holds a token")
				}
			}
		})
	}
}
