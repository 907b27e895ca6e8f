// Command staticpods renders the static pods of scripts/e2e-kubelet.sh
// (staticpod.E2EPods) from the kustomizations of manifests/ into a
// directory, one NAME.yaml each, and prints every change it made to each,
// by name, never by value. Run it from test/e2e/staticpod, its module:
//
//	go run ./cmd/staticpods -out DIR -public-key cp.pub -ca ca.pem
//
// Exit status: 0 when every pod is written, 1 when one cannot be, 2 for a
// usage error.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/ambient-code/tokend/test/e2e/staticpod"
	"sigs.k8s.io/yaml"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("staticpods", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "directory to write NAME.yaml into (required)")
	keyFile := fs.String("public-key", "", "the stand-in control plane's public key, PEM (required)")
	ca := fs.String("ca", "", "CA bundle on the node that tokend trusts for https, mounted by hostPath (absolute)")
	session := fs.String("session-id", "e2e-session-0001", "session id for SESSION_ID placeholders")
	dir := fs.String("manifests", "../../../manifests", "the manifests directory")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var errs []error
	if *out == "" {
		errs = append(errs, errors.New("-out is required: the directory to write the pods into"))
	}
	if *keyFile == "" {
		errs = append(errs, errors.New("-public-key is required: the stand-in control plane's public key file"))
	}
	if *ca != "" && !filepath.IsAbs(*ca) {
		errs = append(errs, fmt.Errorf("-ca %s: give an absolute path, as the kubelet's hostPath needs", *ca))
	}
	if len(errs) > 0 {
		fmt.Fprintln(stderr, "staticpods:", errors.Join(errs...))
		return 2
	}
	if err := write(*out, *keyFile, *ca, *session, *dir, stdout); err != nil {
		fmt.Fprintln(stderr, "staticpods:", err)
		return 1
	}
	return 0
}

func write(out, keyFile, ca, session, dir string, stdout io.Writer) error {
	key, err := os.ReadFile(keyFile)
	if err != nil {
		return fmt.Errorf("-public-key: %w", err)
	}
	for _, p := range staticpod.E2EPods {
		o := staticpod.Options{PublicKey: string(key), SessionID: session, CAFile: ca, RunAsUser: p.RunAsUser}
		pod, changes, err := staticpod.Render(filepath.Join(dir, p.Dir), o)
		if err != nil {
			return err
		}
		b, err := yaml.Marshal(pod)
		if err != nil {
			return fmt.Errorf("%s: %w", p.Name, err)
		}
		if err := os.WriteFile(filepath.Join(out, p.Name+".yaml"), b, 0o600); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s (from %s):\n", p.Name, p.Dir)
		for _, c := range changes {
			fmt.Fprintf(stdout, "  - %s\n", c)
		}
	}
	return nil
}
