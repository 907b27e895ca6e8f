package refresher

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ambient-code/tokend/internal/exchange"
)

// TestRefusalWithdrawsWithinOneExchange (rule 8): the exchange that is
// refused withdraws the token, in the Sink and to every Observer, before
// the refresher waits; later refusals keep it withdrawn on a backoff
// capped at MaxBackoff, and the next success restores a token. One log
// line marks each change of state.
func TestRefusalWithdrawsWithinOneExchange(t *testing.T) {
	revoked := &exchange.StatusError{StatusCode: 403, Hint: "runner access revoked"}
	steps := []func(int) (exchange.Token, error){opaque}
	for range 8 {
		steps = append(steps, fail(revoked))
	}
	s := &script{steps: append(steps, opaque)}
	m := &memStore{}
	r := newRefresher(s, m)
	r.Interval = time.Minute
	r.MaxBackoff = 5 * time.Second
	var logs bytes.Buffer
	r.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	rec := &recorder{}
	r.Observers = []Observer{rec}
	got := runFor(t, r, s, 2*time.Minute)

	reason := "token endpoint answered 403 Forbidden: runner access revoked"
	want := []string{"exchanged(<nil>)", "stored(tok-1,true)", "waiting",
		"exchanged(" + revoked.Error() + ")", "failed(1)", "withdrawn(" + reason + ")", "waiting"}
	if len(rec.calls) < len(want) || !slices.Equal(rec.calls[:len(want)], want) {
		t.Fatalf("observers saw\n%v\nwant it to begin\n%v", rec.calls, want)
	}
	if len(got) < 10 {
		t.Fatalf("%d exchanges in two minutes, want the 8 refusals and the recovery", len(got))
	}
	for i := 2; i < 10; i++ {
		if gap := got[i] - got[i-1]; gap > r.MaxBackoff {
			t.Errorf("gap %v between refusals, more than MaxBackoff %v", gap, r.MaxBackoff)
		}
	}
	if got[9]-got[1] < 20*time.Second {
		t.Errorf("8 refusals asked within %v: not backed off", got[9]-got[1])
	}
	if len(m.withdrawn) != 8 || m.withdrawn[0] != reason {
		t.Errorf("Sink withdrawals %q, want 8 with the reason", m.withdrawn)
	}
	if last := m.tokens[len(m.tokens)-1]; last != "tok-10" {
		t.Errorf("the token after the refusals is %q, want tok-10 restored", last)
	}
	if i := slices.Index(rec.calls, "stored(tok-10,true)"); i < 0 {
		t.Errorf("the restored token was not reported as a change: %v", rec.calls)
	}
	out := logs.String()
	if n := strings.Count(out, "level=ERROR"); n != 1 || !strings.Contains(out, `msg="token withdrawn`) {
		t.Errorf("%d error lines, want one for the withdrawal:\n%s", n, out)
	}
	if n := strings.Count(out, "token restored"); n != 1 {
		t.Errorf("%d restore lines, want one:\n%s", n, out)
	}
	if n := strings.Count(out, "level=WARN"); n != 0 {
		t.Errorf("refusals logged per attempt at warning level:\n%s", out)
	}
}

// TestOnceWithdrawsOnARefusal: init's refused exchange withdraws a token a
// previous run left, and returns at once.
func TestOnceWithdrawsOnARefusal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &script{steps: []func(int) (exchange.Token, error){fail(&exchange.StatusError{StatusCode: 401, Confirmed: true})}}
		m := &memStore{}
		r := newRefresher(s, m)
		ctx, cancel := context.WithTimeout(t.Context(), time.Hour)
		defer cancel()
		if _, err := r.Once(ctx); exchange.Classify(err) != exchange.Refused {
			t.Fatalf("Once = %v, want the refusal", err)
		}
		if len(s.offsets()) != 1 || len(m.withdrawn) != 1 {
			t.Errorf("%d exchanges, %d withdrawals; want 1 and 1", len(s.offsets()), len(m.withdrawn))
		}
	})
}

// TestWarnsAheadOfTheCredentialsEnd: a token whose credential expires
// within 24 hours, then within one hour, brings one warning each; tokens
// without a credential expiry, or far from it, bring none.
func TestWarnsAheadOfTheCredentialsEnd(t *testing.T) {
	now := time.Unix(1_900_000_000, 0)
	end := now.Add(30 * time.Hour)
	r := newRefresher(&script{}, &memStore{})
	var logs bytes.Buffer
	r.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	r.Now = func() time.Time { return now }
	tok := exchange.Token{CredentialExpiry: end}
	for _, step := range []struct {
		at   time.Duration // before end
		warn int           // warnings so far
	}{{29 * time.Hour, 0}, {24*time.Hour + time.Second, 0}, {24 * time.Hour, 1}, {23 * time.Hour, 1}, {61 * time.Minute, 1}, {time.Hour, 2}, {time.Minute, 2}} {
		now = end.Add(-step.at)
		r.warn(tok)
		r.warn(exchange.Token{})
		if n := strings.Count(logs.String(), "level=WARN"); n != step.warn {
			t.Fatalf("%v before the end: %d warnings, want %d:\n%s", step.at, n, step.warn, logs.String())
		}
	}
	if !strings.Contains(logs.String(), "credential_expires_in=1h0m0s") {
		t.Errorf("the warning does not say how long is left:\n%s", logs.String())
	}
}
