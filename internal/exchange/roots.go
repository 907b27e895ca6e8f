package exchange

import (
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// LoadRoots returns the system roots plus the certificates in the PEM files
// at paths; empty paths are skipped. The system roots honour SSL_CERT_FILE
// and SSL_CERT_DIR. Loading them is most of a cold start's CPU, so call it
// only for an https URL. Errors name the file and say what is wrong with it.
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

// CheckCAFiles reports, as LoadRoots would, whether each PEM file at paths
// can be read and holds a certificate, without loading the system roots.
func CheckCAFiles(paths ...string) error {
	return appendPEMFiles(x509.NewCertPool(), paths...)
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
