package exchange

import (
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// LoadRoots returns the system roots plus the certificates in the PEM file
// at path, when not empty. The system roots honour SSL_CERT_FILE and
// SSL_CERT_DIR. Loading them is most of a cold start's CPU, so call it
// only for an https URL. Errors name the file and say what is wrong with it.
func LoadRoots(path string) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if err := appendPEMFile(pool, path); err != nil {
		return nil, err
	}
	return pool, nil
}

// CheckCAFiles reports, as LoadRoots would, whether the PEM file at path
// can be read and holds a certificate, without loading the system roots.
func CheckCAFiles(path string) error { return appendPEMFile(x509.NewCertPool(), path) }

func appendPEMFile(pool *x509.CertPool, path string) error {
	if path == "" {
		return nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("cannot read %s: %v", path, errors.Unwrap(err))
	}
	if !pool.AppendCertsFromPEM(data) {
		return fmt.Errorf("%s holds no PEM certificate", path)
	}
	return nil
}
