package testkit

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"sync"
	"time"
)

// RSAKey returns a 2048-bit RSA key generated once per test process:
// generating one takes long enough to matter on a busy machine. Callers
// must not modify it. It panics if the system's randomness fails.
var RSAKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

// PublicPEM returns k's public key as a PKIX "PUBLIC KEY" PEM block.
func PublicPEM(k *rsa.PrivateKey) string {
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		panic(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// PublicKeyPEM returns RSAKey's public key as a PKIX "PUBLIC KEY" PEM block.
var PublicKeyPEM = sync.OnceValue(func() string {
	der, err := x509.MarshalPKIXPublicKey(&RSAKey().PublicKey)
	if err != nil {
		panic(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
})

// Cert is a self-signed server certificate, generated once per test
// process, valid for 127.0.0.1, ::1, localhost and example.com until a
// year after it was made (an ECDSA P-256 key: quick to handshake).
type Cert struct {
	// TLS is the certificate with its key, for a tls.Config.
	TLS tls.Certificate
	// Roots trusts the certificate and nothing else.
	Roots *x509.CertPool
	// PEM is the certificate alone.
	PEM []byte
}

// ServerCert returns the process's Cert. It panics if generation fails.
var ServerCert = sync.OnceValue(func() *Cert {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "tokend test"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:              []string{"localhost", "example.com"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		panic(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		panic(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	return &Cert{
		TLS:   tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k, Leaf: leaf},
		Roots: roots,
		PEM:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
	}
})

// OtherRSAKey returns a second 2048-bit RSA key, generated once per test
// process, for tests that need a key that is not RSAKey.
var OtherRSAKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})
