package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"time"

	"github.com/ambient-code/tokend/internal/secret"
	"github.com/ambient-code/tokend/internal/tokendir"
	"github.com/ambient-code/tokend/test/fakeissuer"
)

// encryptedSession writes the public key and serves the deployed exchange
// over plain http.
func encryptedSession(o options, key *rsa.PrivateKey, log *slog.Logger) (endpoint, error) {
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return endpoint{}, err
	}
	if _, err := tokendir.WriteFile(o.keyOut, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		return endpoint{}, err
	}
	log.Info("public key written", "path", o.keyOut)
	iss := &fakeissuer.Issuer{Key: key, Lifetime: o.lifetime, CacheFloor: o.floor}
	return endpoint{handler: logged(iss, iss.Issued, log)}, nil
}

// bearer writes the TLS CA and a capability, and serves the successor
// control plane's token endpoint as implemented (GET with the capability)
// over TLS.
func bearer(o options, log *slog.Logger) (endpoint, error) {
	tlsConfig, err := writeCA(o.caOut, log)
	if err != nil {
		return endpoint{}, err
	}
	capability := "cap." + serial().Text(36)
	if _, err := tokendir.WriteFile(o.credentialOut, []byte(capability), 0o600); err != nil {
		return endpoint{}, err
	}
	log.Info("capability written", "path", o.credentialOut, "fingerprint", secret.Fingerprint(capability))
	iss := &fakeissuer.BearerIssuer{Capability: capability, Lifetime: o.lifetime}
	return endpoint{
		handler: logged(iss, iss.Issued, log),
		tls:     tlsConfig,
	}, nil
}

// writeCA generates the TLS certificates, writes the CA to path, and
// returns the server's TLS configuration.
func writeCA(path string, log *slog.Logger) (*tls.Config, error) {
	caPEM, cert, err := newServerTLS()
	if err != nil {
		return nil, fmt.Errorf("generating the TLS certificates: %w", err)
	}
	if _, err := tokendir.WriteFile(path, caPEM, 0o644); err != nil {
		return nil, err
	}
	log.Info("CA written", "path", path)
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}, nil
}

// newServerTLS generates a CA and a server certificate it signs for
// 127.0.0.1, ::1 and localhost, both valid for a day. It returns the CA as
// PEM.
func newServerTLS() ([]byte, tls.Certificate, error) {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "fakecp local CA"},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	cert := tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: leafKey}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), cert, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	return n
}
