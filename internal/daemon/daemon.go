// Package daemon wires tokend's parts into its commands: init (one token,
// then exit), run (keep the token fresh), exec (run, and a command beside
// it) and check (judge the token on disk). wire.go builds the refresher,
// once: what it calls, in which order, and every door that asks it for an
// exchange now.
//
// Every function returns its error to the caller, which logs it once and maps
// it to an exit status; nothing here logs an error it returns.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/ambient-code/tokend/internal/exchange"
	"github.com/ambient-code/tokend/internal/health"
	"github.com/ambient-code/tokend/internal/jwtexp"
	"github.com/ambient-code/tokend/internal/refresher"
	"github.com/ambient-code/tokend/internal/tokendir"
)

// Deps are what the commands take from outside besides the configuration.
// Zero fields get production values.
type Deps struct {
	// Logger receives the commands' log lines.
	Logger *slog.Logger
	// Exchanger replaces the one built from the configuration (tests).
	Exchanger exchange.Exchanger
	// Now is the wall clock; time.Now when nil.
	Now func() time.Time
	// RefreshSignals, when set, carries the signals that ask run and exec
	// for an exchange now (SIGHUP, SIGUSR1); the caller registers them
	// with signal.Notify.
	RefreshSignals <-chan os.Signal
	// Observer, when set, is told of every step of the refresher of Init
	// and Run, after its other observers (tests wait on it).
	Observer refresher.Observer
	// Restored, when set, follows each restore of a lost output
	// (tokendir.Dir.Restored) on the token directory's goroutine; it must
	// not block.
	Restored func(fingerprint string, err error)
	// Listening, when set, receives the health server's address once Run
	// has bound it, before it serves. It must not block.
	Listening func(net.Addr)
}

func (d Deps) now() time.Time {
	if d.Now == nil {
		return time.Now()
	}
	return d.Now()
}

// Init obtains one token within cfg.InitTimeout, writes it, reads it back,
// leaves run the note that lets it adopt the token (handoff.go) and
// returns. A permanent refusal returns at once.
func Init(ctx context.Context, cfg *Config, d Deps) error {
	r, dir, log := prepare(cfg, d)
	ctx, cancel := context.WithTimeout(ctx, cfg.InitTimeout)
	defer cancel()
	tok, err := r.Once(ctx)
	if err != nil {
		return err
	}
	if err := dir.Verify(); err != nil {
		return fmt.Errorf("reading the token back: %w", err)
	}
	// A lost note costs run an exchange, not init its success.
	if err := dir.WriteHandoff(tok, issuer(cfg)); err != nil {
		log.Warn("could not leave tokend run the note of this token; it will exchange again when it starts", slog.String("error", err.Error()))
	}
	return nil
}

// Run adopts the token init wrote when it can (handoff.go), keeps the
// token fresh, has the token directory write it again as
// soon as the token file is removed or replaced (tokendir.Dir.Run), and
// serves probes and metrics on cfg.HealthAddr, until ctx ends; it then
// returns nil once any write in progress has finished. It returns an error
// only when it cannot start or the health server fails.
func Run(ctx context.Context, cfg *Config, d Deps) error {
	w, err := wire(cfg, d, nil)
	if err != nil {
		return err
	}
	return w.run(ctx, d)
}

// ErrCheck is wrapped by every reason Check finds the token unfit.
var ErrCheck = errors.New("token not usable")

// statusTimeout bounds Check's question to the running daemon.
const statusTimeout = 2 * time.Second

// Check judges the token file: it must be a regular file holding a
// well-formed token that has not expired. The expiry comes from the token's
// JWT exp claim, or else from the running daemon (`tokend run`, asked on
// cfg.HealthAddr) when it describes the same token. With cfg.MaxAge > 0 the
// daemon must also report a successful exchange at most MaxAge ago. Check
// never blocks longer than statusTimeout on the daemon, and reads nothing
// but the token file. It returns a one-line description of a good token.
func Check(cfg *Config, d Deps) (string, error) {
	tok, err := tokendir.ReadToken(cfg.TokenFile)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrCheck, err)
	}
	fp := tok.Fingerprint()
	now := d.now()
	var st health.Status
	stErr := errors.New("the health listener is disabled (TOKEND_HEALTH_ADDR is empty)")
	if cfg.HealthAddr != "" {
		st, stErr = health.FetchStatus(cfg.HealthAddr, statusTimeout)
	}
	// The expiry: from the running daemon's status when that describes
	// this token (on this node's clock, and known for opaque tokens too),
	// else from its JWT exp claim.
	exp, source := st.Expiry, "tokend run"
	if stErr != nil || st.Fingerprint != fp || exp.IsZero() {
		exp, source = time.Time{}, ""
		if e, ok := jwtexp.Expiry(tok.Reveal()); ok {
			exp, source = e, "jwt exp"
		}
	}
	if !exp.IsZero() && !now.Before(exp) {
		return "", fmt.Errorf("%w: token %s expired at %s (%s)", ErrCheck, fp, exp.Format(time.RFC3339), source)
	}
	if cfg.MaxAge > 0 {
		if stErr != nil {
			return "", fmt.Errorf("%w: --max-age needs the status of tokend run: %w; run check in the pod of a tokend run sidecar with the same TOKEND_HEALTH_ADDR", ErrCheck, stErr)
		}
		if age := now.Sub(st.LastSuccess); age > cfg.MaxAge {
			return "", fmt.Errorf("%w: last successful exchange %s ago, more than --max-age %s", ErrCheck, age.Round(time.Second), cfg.MaxAge)
		}
	}
	desc := "token " + fp
	if !exp.IsZero() {
		desc += fmt.Sprintf(" expires in %s", exp.Sub(now).Round(time.Second))
	}
	return desc, nil
}
