// Command fakecp is a local stand-in for the control plane's token endpoint,
// for trying tokend without a cluster. It is not part of the tokend image.
//
// It generates an RSA key, writes the public key (PEM) to --public-key-out,
// and serves GET /token on --addr exactly as the control plane does, minting
// short-lived JWTs so that rotation is quick to watch:
//
//	fakecp --addr 127.0.0.1:8080 --public-key-out /tmp/cp.pub --lifetime 40s
//
// It logs each request's outcome, never a token or a session id, and stops
// cleanly on SIGINT or SIGTERM.
package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
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

	"github.com/ambient-code/tokend/internal/fakeissuer"
	"github.com/ambient-code/tokend/internal/filewriter"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "fakecp:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	fs := flag.NewFlagSet("fakecp", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8080", "listen address (loopback)")
	keyOut := fs.String("public-key-out", "", "write the public key PEM here (required)")
	bits := fs.Int("key-bits", 2048, "RSA key size; the control plane uses 4096")
	lifetime := fs.Duration("lifetime", 40*time.Second, "lifetime of minted tokens")
	floor := fs.Duration("cache-floor", 30*time.Second, "hand out the cached token until fewer than this remain")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *keyOut == "" {
		return errors.New("--public-key-out is required")
	}
	log := slog.New(slog.NewTextHandler(stderr, nil)).With("component", "fakecp")
	key, err := rsa.GenerateKey(rand.Reader, *bits)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return err
	}
	if _, err := filewriter.New(*keyOut, 0o644).Write(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})); err != nil {
		return err
	}
	iss := &fakeissuer.Issuer{Key: key, Lifetime: *lifetime, CacheFloor: *floor}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: logged(iss, log), ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second, IdleTimeout: 60 * time.Second}
	log.Info("serving", "url", "http://"+ln.Addr().String()+"/token", "public_key", *keyOut, "lifetime", *lifetime)
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("stopped")
	return nil
}

// logged logs each request's method, path, status and how many tokens the
// issuer has minted so far.
func logged(iss *fakeissuer.Issuer, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		iss.ServeHTTP(rec, r)
		log.Info("request", "method", r.Method, "path", r.URL.Path, "status", rec.status, "tokens_minted", iss.Issued())
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
