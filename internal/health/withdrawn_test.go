package health

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ambient-code/tokend/internal/exchange"
	"github.com/ambient-code/tokend/internal/secret"
)

// TestWithdrawalFailsReadiness: a withdrawal fails /readyz at once, naming
// the reason, and shows in tokend_token_withdrawn and /statusz until the
// next token;
// the credential's expiry is exported with each token.
func TestWithdrawalFailsReadiness(t *testing.T) {
	dir := testDir(t)
	now := time.Unix(1_800_000_000, 0)
	m := New(dir.Verified, func() time.Time { return now })
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	capEnd := now.Add(36 * time.Hour)
	tok := exchange.Token{Value: secret.New("tok-1"), Expiry: now.Add(5 * time.Minute), CredentialExpiry: capEnd}
	if _, err := dir.Store(tok); err != nil {
		t.Fatal(err)
	}
	m.Stored(tok, true)
	if code, _ := get("/readyz"); code != 200 {
		t.Fatalf("/readyz = %d with a token", code)
	}
	_, metrics := get("/metrics")
	for _, want := range []string{"tokend_token_withdrawn 0", "tokend_credential_expiry_timestamp_seconds 1.8001296e+09"} {
		if !strings.Contains(metrics, want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}

	const reason = "token endpoint answered 403 Forbidden: runner access revoked"
	if _, err := dir.Withdraw(reason); err != nil {
		t.Fatal(err)
	}
	m.Withdrawn(reason)
	if code, body := get("/readyz"); code != 503 || body != "token withdrawn: "+reason+"\n" {
		t.Errorf("/readyz after the withdrawal = %d %q, want 503 naming the reason", code, body)
	}
	if _, metrics := get("/metrics"); !strings.Contains(metrics, "tokend_token_withdrawn 1\n") {
		t.Errorf("tokend_token_withdrawn is not 1 after the withdrawal")
	}
	if _, body := get(StatusPath); !strings.Contains(body, `"withdrawn":"`+reason+`"`) {
		t.Errorf("%s after the withdrawal does not give its reason: %s", StatusPath, body)
	}

	tok2 := exchange.Token{Value: secret.New("tok-2"), Expiry: now.Add(5 * time.Minute)}
	if _, err := dir.Store(tok2); err != nil {
		t.Fatal(err)
	}
	m.Stored(tok2, true)
	if code, body := get("/readyz"); code != 200 {
		t.Errorf("/readyz after a new token = %d %q", code, body)
	}
	if _, body := get(StatusPath); strings.Contains(body, "withdrawn") {
		t.Errorf("%s after a new token still says withdrawn: %s", StatusPath, body)
	}
	if _, metrics := get("/metrics"); !strings.Contains(metrics, "tokend_token_withdrawn 0\n") ||
		!strings.Contains(metrics, "tokend_credential_expiry_timestamp_seconds 0\n") {
		t.Errorf("after a new token without a credential expiry: withdrawn not 0 or credential expiry not 0")
	}
}
