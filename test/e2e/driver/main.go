// Command driver runs the scenarios of scripts/e2e-kubelet.sh against a
// standalone kubelet, inside the node's network namespace, and prints
// their table. The script starts containerd and the kubelet; the driver
// serves the stand-ins (the control plane on 127.0.0.1:8080 and the API
// server on 127.0.0.1:8443, the ports the manifests name), starts and
// stops the static pods, and judges each scenario by the kubelet's pod
// status and the containers' own output, never by elapsed time.
//
//	driver prepare -dir DIR     the stand-ins' keys and certificates, before the pods are rendered
//	driver run -dir DIR -pods RENDERED -static STATICPODPATH -logs PODLOGSDIR \
//	    -kubelet http://127.0.0.1:10255 -ctr "ctr -a SOCK -n k8s.io" [-cost NAME=SECONDS ...]
//
// Exit status: 0 when no scenario failed, 1 when one did, 2 for a usage
// error.
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
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ambient-code/tokend/test/e2e/standin"
)

// Files in the prepare directory.
const (
	cpKeyFile        = "cp-key.pem"
	cpPublicKeyFile  = "cp.pub"
	upstreamCAFile   = "upstream-ca.pem"
	upstreamCertFile = "upstream-cert.pem"
	upstreamKeyFile  = "upstream-key.pem"
)

// apiServerName is the API server's Service name in the manifests.
const apiServerName = "ambient-api-server.ambient-code.svc"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "prepare" && args[0] != "run") {
		fmt.Fprintln(stderr, "driver: say prepare or run; see the command's doc")
		return 2
	}
	fs := flag.NewFlagSet("driver "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "directory of the stand-ins' keys and certificates (required)")
	if args[0] == "prepare" {
		if err := fs.Parse(args[1:]); err != nil || *dir == "" {
			fmt.Fprintln(stderr, "driver prepare: -dir is required")
			return 2
		}
		if err := prepare(*dir); err != nil {
			fmt.Fprintln(stderr, "driver prepare:", err)
			return 1
		}
		return 0
	}
	c := config{node: node{poll: 200 * time.Millisecond}}
	fs.StringVar(&c.node.rendered, "pods", "", "directory of the rendered static pods (required)")
	fs.StringVar(&c.node.static, "static", "", "the kubelet's staticPodPath (required)")
	fs.StringVar(&c.node.logs, "logs", "", "the kubelet's podLogsDir (required)")
	fs.StringVar(&c.node.kubelet, "kubelet", "http://127.0.0.1:10255", "the kubelet's read-only port")
	fs.StringVar(&c.node.name, "node", "e2e-node", "the node's name")
	ctr := fs.String("ctr", "", `ctr with its address and namespace, e.g. "ctr -a /run/x.sock -n k8s.io" (required)`)
	fs.DurationVar(&c.lifetime, "lifetime", 20*time.Second, "lifetime of the control plane's tokens")
	fs.DurationVar(&c.floor, "cache-floor", 12*time.Second, "the control plane hands a token out until fewer than this remain")
	fs.DurationVar(&c.patience, "patience", 3*time.Minute, "how long one step may wait for its event before it fails")
	fs.Func("cost", "a one-time cost for the table, NAME=SECONDS (repeatable)", func(s string) error {
		name, secs, ok := strings.Cut(s, "=")
		v, err := strconv.ParseFloat(secs, 64)
		if !ok || err != nil {
			return fmt.Errorf("%q is not NAME=SECONDS", s)
		}
		c.costs = append(c.costs, cost{name, v})
		return nil
	})
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	c.node.ctr = strings.Fields(*ctr)
	if *dir == "" || c.node.rendered == "" || c.node.static == "" || c.node.logs == "" || len(c.node.ctr) == 0 {
		fmt.Fprintln(stderr, "driver run: -dir, -pods, -static, -logs and -ctr are required")
		return 2
	}
	c.log = slog.New(slog.NewTextHandler(stderr, nil))
	results, err := c.run(ctx, *dir)
	if err != nil {
		fmt.Fprintln(stderr, "driver run:", err)
		return 1
	}
	printTable(stdout, results, c.costs)
	for _, r := range results {
		if r.status == statusFail {
			return 1
		}
	}
	return 0
}

// prepare writes the control plane's RSA key (2048 bits, enough for a
// test; the control plane's is 4096) and public key, and the API server's
// CA, certificate and key.
func prepare(dir string) error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	priv, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return err
	}
	ca, cert, certKey, err := standin.NewTLS(apiServerName, "127.0.0.1")
	if err != nil {
		return err
	}
	// The public key and the CA are read by tokend in the pods, as its
	// own user, through a hostPath: readable by all. The keys are not.
	for _, f := range []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{cpKeyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: priv}), 0o600},
		{cpPublicKeyFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644},
		{upstreamCAFile, ca, 0o644},
		{upstreamCertFile, cert, 0o644},
		{upstreamKeyFile, certKey, 0o600},
	} {
		if err := os.WriteFile(filepath.Join(dir, f.name), f.data, f.mode); err != nil {
			return err
		}
	}
	return nil
}

// config is one run's settings.
type config struct {
	node            node
	lifetime, floor time.Duration
	patience        time.Duration
	costs           []cost
	log             *slog.Logger
}

// run starts the stand-ins, runs every scenario, and stops the stand-ins.
func (c *config) run(ctx context.Context, dir string) ([]result, error) {
	read := func(name string) ([]byte, error) { return os.ReadFile(filepath.Join(dir, name)) }
	b, err := read(cpKeyFile)
	if err != nil {
		return nil, fmt.Errorf("%w: run driver prepare first", err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New(cpKeyFile + ": not PEM")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	key, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New(cpKeyFile + ": not an RSA key")
	}
	cert, err := read(upstreamCertFile)
	if err != nil {
		return nil, err
	}
	certKey, err := read(upstreamKeyFile)
	if err != nil {
		return nil, err
	}
	tlsConfig, err := standin.ServerTLS(cert, certKey)
	if err != nil {
		return nil, err
	}

	cp := standin.NewControlPlane("127.0.0.1:8080", key, c.lifetime, c.floor, c.log.With("standin", "control-plane"))
	defer cp.Close()
	up := &standin.Upstream{Key: &key.PublicKey, Log: c.log.With("standin", "api-server")}
	ln, err := net.Listen("tcp", "127.0.0.1:8443")
	if err != nil {
		return nil, fmt.Errorf("the stand-in API server: %w", err)
	}
	srv := &http.Server{Handler: up, TLSConfig: tlsConfig, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	defer srv.Close()

	s := &scenarios{config: c, n: &c.node, cp: cp, up: up}
	return s.all(ctx), nil
}
