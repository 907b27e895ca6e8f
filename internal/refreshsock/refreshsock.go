// Package refreshsock serves refresh requests on a Unix socket in the
// token's directory, for consumers in other containers of the pod that
// cannot watch the file and share no process namespace with tokend, and is
// the client that `tokend refresh` and tokenfile use.
//
// Wire protocol: HTTP/1.1 over the socket. POST /v1/refresh, empty body,
// asks for an exchange now. Answers, all JSON (Response):
//
//   - 200: the exchange succeeded; "changed" says whether the token on
//     disk changed, "fingerprint" names the token now held. Never the token.
//   - 502: the exchange or the write failed; "error" says why.
//   - 503: the refresher is not running (starting, or stopping).
//   - 504: no answer within the request's deadline (30 s).
//
// Requests coalesce and are held to the refresher's 500 ms floor, so a
// burst of requests costs the issuer one exchange.
//
// Security: the socket is given the token file's mode with write added
// wherever read is granted (0640 gives 0660), since connecting needs write
// permission. Whoever may connect may read the token already; what the
// socket adds is the power to make tokend exchange now, which the floor
// limits to two exchanges a second. It is not a TCP endpoint, so nothing
// outside the pod's shared volume can reach it; the probe listener, which
// binds every interface, gets no write endpoint.
package refreshsock

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/ambient-code/tokend/internal/listen"
)

// Name is the socket's conventional file name in the token's directory.
const Name = ".tokend.sock"

// requestTimeout bounds one refresh request on the server side.
const requestTimeout = 30 * time.Second

// limits bound the socket's server (see package listen). `tokend refresh`
// and tokenfile make one request per connection, so a handful are open at
// a time; the connections cost at most 2 MiB (listen.Limits.MemoryBound).
var limits = listen.Limits{
	MaxConns:          32,
	MaxHeaderBytes:    4 << 10,
	ReadHeaderTimeout: 5 * time.Second,
	IdleTimeout:       15 * time.Second,
	ReadTimeout:       10 * time.Second,
	WriteTimeout:      requestTimeout + 5*time.Second,
	ShutdownTimeout:   requestTimeout,
}

// DefaultPath returns the socket's conventional path for a token file.
func DefaultPath(tokenFile string) string {
	return filepath.Join(filepath.Dir(tokenFile), Name)
}

// Response is the JSON body of every answer.
type Response struct {
	Changed     bool   `json:"changed"`
	Fingerprint string `json:"fingerprint,omitempty"`
	Error       string `json:"error,omitempty"`
}

// RefreshFunc asks for an exchange now; ok is false when no refresher is
// running. It must be safe for concurrent use.
type RefreshFunc func(ctx context.Context) (changed bool, fingerprint string, err error)

// ErrNotRunning is what a RefreshFunc returns when no refresher serves it.
var ErrNotRunning = errors.New("refreshsock: refresher not running")

// Listen creates the socket at path with mode, as listen.Unix does.
func Listen(path string, mode fs.FileMode) (*net.UnixListener, error) {
	ln, err := listen.Unix(path, mode, "--refresh-socket")
	if err != nil {
		return nil, fmt.Errorf("refreshsock: %w", err)
	}
	return ln, nil
}

// SocketMode is the socket mode for a token file mode: write added where
// read is granted, since connecting to a socket needs write permission.
func SocketMode(fileMode fs.FileMode) fs.FileMode {
	return fileMode.Perm() | (fileMode.Perm()&0o444)>>1
}

// Serve answers refresh requests on ln with refresh, logging each to log,
// until ctx ends, then closes ln (removing the socket) and returns nil once
// the requests in progress have ended, within the bounds above. Other
// errors of the HTTP server are returned.
func Serve(ctx context.Context, ln net.Listener, refresh RefreshFunc, log *slog.Logger) error {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/refresh", handler(refresh, log))
	s := &listen.Server{Handler: mux, Limits: limits, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	if err := s.Serve(ctx, ln); err != nil {
		return fmt.Errorf("refreshsock: %w", err)
	}
	return nil
}

func handler(refresh RefreshFunc, log *slog.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
		defer cancel()
		changed, fp, err := refresh(ctx)
		code, resp := http.StatusOK, Response{Changed: changed, Fingerprint: fp}
		switch {
		case errors.Is(err, ErrNotRunning):
			code, resp = http.StatusServiceUnavailable, Response{Error: "tokend is not refreshing yet (or is stopping): try again"}
		case errors.Is(err, context.DeadlineExceeded):
			code, resp = http.StatusGatewayTimeout, Response{Error: "no exchange finished within " + requestTimeout.String()}
		case err != nil:
			code, resp = http.StatusBadGateway, Response{Fingerprint: fp, Error: err.Error()}
		}
		log.Info("refresh requested", slog.Int("status", code), slog.Bool("changed", resp.Changed), slog.String("fingerprint", resp.Fingerprint))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(resp)
	}
}

// Request asks the tokend serving the socket at path for an exchange now
// and returns its answer. A nil error means the exchange succeeded; any
// other outcome is an error saying what to do. It is safe for concurrent
// use.
func Request(ctx context.Context, path string) (Response, error) {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", path)
	}}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://tokend/v1/refresh", nil)
	if err != nil {
		return Response{}, err
	}
	res, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		var oe *net.OpError
		if errors.As(err, &oe) && oe.Op == "dial" {
			return Response{}, fmt.Errorf("refreshsock: cannot connect to %s: is tokend running with --refresh-socket set to this path, and is the directory shared with this container? (%v)", path, oe.Err)
		}
		return Response{}, fmt.Errorf("refreshsock: %w", err)
	}
	defer res.Body.Close()
	var resp Response
	if err := json.NewDecoder(io.LimitReader(res.Body, 64<<10)).Decode(&resp); err != nil {
		return Response{}, fmt.Errorf("refreshsock: %s answered %s without a valid body: %v", path, res.Status, err)
	}
	if res.StatusCode != http.StatusOK {
		return resp, fmt.Errorf("refreshsock: refresh failed (%s): %s", res.Status, resp.Error)
	}
	return resp, nil
}
