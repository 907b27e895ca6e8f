package tokenfile

import (
	"log/slog"
	"time"
)

// DefaultPollInterval is how often a Watcher re-reads the file when no
// event has told it to, unless WithPollInterval says otherwise. Polling is
// the safety net for events that never arrive: a full event queue, a file
// system without notifications, a watch that could not be installed.
const DefaultPollInterval = 30 * time.Second

// settleDelay is how long the file must stay free of in-place writes before
// it is read after one, so a truncate-and-write is not read half way.
const settleDelay = 20 * time.Millisecond

// maxSettleRounds bounds how often a steady stream of writes postpones the
// read; then the file is read anyway, and the content check decides.
const maxSettleRounds = 50

// An Option configures a Watcher. Options are applied in order by New.
type Option func(*config)

// config is what the options set; New checks it and the Watcher keeps it.
type config struct {
	poll     time.Duration
	log      *slog.Logger
	now      func() time.Time
	onChange []func(token string)
	// WithRefreshSocket (refresh.go)
	refreshSocket string
	refreshWait   time.Duration
}

// WithPollInterval sets how often the file is re-read regardless of events.
// d must be positive; the default is DefaultPollInterval.
func WithPollInterval(d time.Duration) Option {
	return func(c *config) { c.poll = d }
}

// WithLogger reports what the Watcher notices through l: problems with the
// file as warnings (logged once when they start, not on every read), the
// recovery as info, token changes as debug, a broken watch as an error. Log
// records name a token by its fingerprint, never by its value. Without this
// option a Watcher logs nothing.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) { c.log = l }
}

// WithClock sets the clock used to stamp Snapshot.LoadedAt. The default is
// time.Now. Timers are not affected.
func WithClock(now func() time.Time) Option {
	return func(c *config) { c.now = now }
}

// WithOnChange registers fn to be called with the new token each time the
// token changes, starting with the first token read. It is how a holder
// that already exists, such as an API client with a SetToken(string) method,
// follows the file:
//
//	tokenfile.New(path, tokenfile.WithOnChange(api.SetToken))
//
// Callbacks run on the goroutine that called Run, one at a time, in the
// order the changes happened and in the order they were registered. A token
// identical to the previous one is not a change. A change that is replaced
// by another before the callbacks run is skipped: callbacks always end with
// the current token. When the file's writer withdraws the token
// (ErrWithdrawn), the callbacks are called with "": the holder must stop
// using the token it has. A callback must return promptly, since the Watcher does
// not read the file while it runs; it may call any method of the Watcher
// and may send requests through its Transport.
func WithOnChange(fn func(token string)) Option {
	return func(c *config) { c.onChange = append(c.onChange, fn) }
}
