package tokenfile

import (
	"context"
	"time"

	"github.com/ambient-code/tokend/internal/refreshsock"
)

// DefaultRefreshWait bounds a refresh request made by the Transport: the
// exchange, the write of the new token, and the answer.
const DefaultRefreshWait = 5 * time.Second

// WithRefreshSocket makes the Transport ask tokend for a new token after a
// 401 that re-reading the file does not cure (step 4 of Transport): it
// sends a refresh request to the tokend serving the Unix socket at path
// (tokend run --refresh-socket; conventionally ".tokend.sock" beside the
// token file), waits at most wait (DefaultRefreshWait when zero or
// negative) and, when tokend wrote a different token, re-reads the file and
// retries once with it. Concurrent 401s with the same token share one
// request, and tokend holds exchanges 500 ms apart. A failed request is
// logged (WithLogger) and the 401 is returned as it is. An empty path
// disables the option.
func WithRefreshSocket(path string, wait time.Duration) Option {
	if wait <= 0 {
		wait = DefaultRefreshWait
	}
	return func(c *config) {
		c.refreshSocket, c.refreshWait = path, wait
	}
}

// askRefresh asks tokend for a token other than rejected and returns the
// token the file then holds; rejected when there is no other. It needs
// w.refreshSocket.
func (w *Watcher) askRefresh(ctx context.Context, rejected string) string {
	v, _, _ := w.flight.Do(rejected, func() (any, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.refreshWait)
		defer cancel()
		resp, err := refreshsock.Request(ctx, w.refreshSocket)
		if err != nil {
			w.log.Warn("tokenfile: asking tokend for a new token after a 401 failed", "error", err.Error())
		}
		if err != nil || !resp.Changed {
			return rejected, nil
		}
		return w.reload("").Token, nil
	})
	return v.(string)
}
