package config

import (
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
)

// caBundle is the one CA setting. Several names feed it, because the
// control plane's manifests and tokend's grew their own; they are one
// setting, and when more than one is given they must name the same file.
// Precedence: a flag (--ca-file, or the older --cp-ca-file) over a
// variable (TOKEND_CA_FILE, AMBIENT_CP_CA_PATH of the announced contract,
// AMBIENT_CP_CA_CERT_FILE of the successor as served), which is over no
// CA file. Two flags, or two variables, that name different files are a
// problem: a pod that needs two CAs puts both in one PEM bundle.
var caBundle = &setting{name: "ca-file", env: "TOKEND_CA_FILE",
	also: []source{{"cp-ca-file", "AMBIENT_CP_CA_PATH"}, {"", "AMBIENT_CP_CA_CERT_FILE"}},
	usage: "PEM CA bundle trusted for https besides the system roots (and SSL_CERT_FILE): " +
		"the control plane's, a proxy's or a company's (--cp-ca-file is the same setting)",
	conflictFix: ", with every CA the pod needs in one PEM bundle",
	value:       func(c *Config) flag.Value { return stringVar(&c.CAFile) }}

// loadRoots checks CAFile and, when the token URL or the proxy's upstream
// is https, loads the system roots plus CAFile into Roots: once, for every
// part of tokend that dials https.
func (c *Config) loadRoots(p *problems) {
	https := c.TokenURL != nil && c.TokenURL.Scheme == "https" ||
		c.Proxy.Upstream != nil && c.Proxy.Upstream.Scheme == "https"
	if !https {
		if c.CAFile != "" {
			if err := appendPEMFiles(x509.NewCertPool(), c.CAFile); err != nil {
				p.add(caBundle, "%v", err)
			}
		}
		return
	}
	roots, err := LoadRoots(c.CAFile)
	if err != nil {
		p.add(caBundle, "%v", err)
	}
	c.Roots = roots
}

// LoadRoots returns the system roots plus the certificates in the PEM files
// at paths; empty paths are skipped. The system roots honour SSL_CERT_FILE
// and SSL_CERT_DIR. Loading them is most of a cold start's CPU, so call it
// only for an https URL.
func LoadRoots(paths ...string) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if err := appendPEMFiles(pool, paths...); err != nil {
		return nil, err
	}
	return pool, nil
}

// appendPEMFiles adds the certificates of the PEM files at paths to pool;
// empty paths are skipped.
func appendPEMFiles(pool *x509.CertPool, paths ...string) error {
	for _, path := range paths {
		if path == "" {
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("cannot read %s: %v", path, errors.Unwrap(err))
		}
		if !pool.AppendCertsFromPEM(data) {
			return fmt.Errorf("%s holds no PEM certificate", path)
		}
	}
	return nil
}
