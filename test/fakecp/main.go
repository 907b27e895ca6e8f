// Command fakecp is a local stand-in for the control plane's token endpoint,
// for trying tokend without a cluster. It is not part of the tokend image.
//
// By default it speaks the deployed encrypted-session exchange: it generates
// an RSA key, writes the public key (PEM) to --public-key-out, and serves
// GET /token over plain http exactly as the control plane does, minting
// short-lived JWTs so that rotation is quick to watch:
//
//	fakecp --addr 127.0.0.1:8080 --public-key-out /tmp/cp.pub --lifetime 40s
//
// With --auth bearer it serves the successor control plane's token endpoint
// as implemented: GET /token over HTTPS (TLS 1.2 or later) with a CA and
// server certificate (for 127.0.0.1, ::1 and localhost) that it generates,
// writing the CA to --ca-out and the capability it accepts to
// --credential-out:
//
//	fakecp --auth bearer --addr 127.0.0.1:8443 --ca-out /tmp/cp-ca.pem --credential-out /tmp/capability
//
// It logs each request's outcome, never a token or a credential, and stops
// cleanly on SIGINT or SIGTERM.
package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"
)

const (
	authEncryptedSession = "encrypted-session"
	authBearer           = "bearer"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stderr, nil); err != nil {
		fmt.Fprintln(os.Stderr, "fakecp:", err)
		os.Exit(1)
	}
}

// options are fakecp's flags.
type options struct {
	auth, addr      string
	keyOut, caOut   string
	credentialOut   string
	bits            int
	lifetime, floor time.Duration
}

// endpoint is what a mode serves: its handler, and TLS when it uses it.
type endpoint struct {
	handler http.Handler
	tls     *tls.Config
}

// run is fakecp without the process. listening, when set, learns the
// address once fakecp listens (tests listen on port 0).
func run(ctx context.Context, args []string, stderr io.Writer, listening func(net.Addr)) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil)).With("component", "fakecp")
	key, err := rsa.GenerateKey(rand.Reader, o.bits)
	if err != nil {
		return err
	}
	var ep endpoint
	switch o.auth {
	case authBearer:
		ep, err = bearer(o, log)
	default:
		ep, err = encryptedSession(o, key, log)
	}
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return err
	}
	scheme := "http"
	if ep.tls != nil {
		scheme = "https"
	}
	log.Info("serving", "auth", o.auth, "url", scheme+"://"+ln.Addr().String()+"/token", "lifetime", o.lifetime)
	if listening != nil {
		listening(ln.Addr())
	}
	if err := serve(ctx, ln, ep); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("fakecp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.auth, "auth", authEncryptedSession, "exchange to serve: "+authEncryptedSession+" or "+authBearer)
	fs.StringVar(&o.addr, "addr", "127.0.0.1:8080", "listen address (loopback)")
	fs.StringVar(&o.keyOut, "public-key-out", "", "write the public key PEM here (required for "+authEncryptedSession+")")
	fs.StringVar(&o.caOut, "ca-out", "", "write the TLS CA PEM here (required for "+authBearer+")")
	fs.StringVar(&o.credentialOut, "credential-out", "", "write the capability "+authBearer+" accepts here (required for "+authBearer+")")
	fs.IntVar(&o.bits, "key-bits", 2048, "RSA key size; the control plane uses 4096")
	fs.DurationVar(&o.lifetime, "lifetime", 0, "lifetime of minted tokens (0: 40s, 5m with --auth "+authBearer+")")
	fs.DurationVar(&o.floor, "cache-floor", 30*time.Second, "hand out the cached token until fewer than this remain ("+authEncryptedSession+")")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	switch {
	case o.auth == authEncryptedSession && o.keyOut == "":
		return o, errors.New("--public-key-out is required")
	case o.auth == authBearer && (o.caOut == "" || o.credentialOut == ""):
		return o, errors.New("--ca-out and --credential-out are required with --auth " + authBearer)
	case o.auth != authEncryptedSession && o.auth != authBearer:
		return o, fmt.Errorf("--auth must be %s or %s", authEncryptedSession, authBearer)
	}
	if o.lifetime == 0 {
		o.lifetime = 40 * time.Second
		if o.auth == authBearer {
			o.lifetime = 5 * time.Minute
		}
	}
	return o, nil
}

// serve runs ep on ln until ctx ends, then shuts down gracefully.
func serve(ctx context.Context, ln net.Listener, ep endpoint) error {
	srv := &http.Server{Handler: ep.handler, TLSConfig: ep.tls, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second, IdleTimeout: 60 * time.Second}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	})
	g.Go(func() error {
		var err error
		if ep.tls != nil {
			err = srv.ServeTLS(ln, "", "")
		} else {
			err = srv.Serve(ln)
		}
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	})
	return g.Wait()
}

// logged logs each request's method, path, status and how many tokens the
// issuer has minted so far.
func logged(next http.Handler, issued func() int64, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		log.Info("request", "method", r.Method, "path", r.URL.Path, "status", rec.status, "tokens_minted", issued())
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}
