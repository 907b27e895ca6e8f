package standin

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/ambient-code/tokend/internal/secret"
)

// Upstream stands in for the platform's API server behind tokend's
// credential proxy. It answers 200 to a request whose bearer token the
// control plane signed (RS256 with Key) and which has not expired, and 401
// to any other; it records each request. Its methods are safe for
// concurrent use.
type Upstream struct {
	Key *rsa.PublicKey
	Log *slog.Logger

	mu   sync.Mutex // guards seen
	seen []Request
}

// Request is one request the upstream answered. Fingerprint names the
// bearer token it carried ("" when none).
type Request struct {
	Path        string
	Status      int
	Fingerprint string
}

// Requests returns the requests answered so far, in order.
func (u *Upstream) Requests() []Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]Request(nil), u.seen...)
}

func (u *Upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	req := Request{Path: r.URL.Path, Status: http.StatusOK}
	if ok {
		req.Fingerprint = secret.Fingerprint(tok)
	}
	err := errors.New("no bearer token")
	if ok {
		err = verify(u.Key, tok, time.Now())
	}
	if err != nil {
		req.Status = http.StatusUnauthorized
		http.Error(w, "upstream: "+err.Error(), req.Status)
	} else {
		fmt.Fprintln(w, "upstream: ok")
	}
	u.mu.Lock()
	u.seen = append(u.seen, req)
	u.mu.Unlock()
	u.Log.Info("upstream request", "path", req.Path, "status", req.Status, "fingerprint", req.Fingerprint)
}

// verify checks an RS256 compact JWS against key and that it has not
// expired at now. The error says which check failed, never the token.
func verify(key *rsa.PublicKey, token string, now time.Time) error {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return errors.New("not a compact JWS")
	}
	enc := base64.RawURLEncoding
	sig, err := enc.DecodeString(parts[2])
	if err != nil {
		return errors.New("signature is not base64url")
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if rsa.VerifyPKCS1v15(key, crypto.SHA256, sum[:], sig) != nil {
		return errors.New("signature does not verify")
	}
	var claims struct {
		Exp int64 `json:"exp"`
	}
	if b, err := enc.DecodeString(parts[1]); err != nil || json.Unmarshal(b, &claims) != nil {
		return errors.New("claims are not JSON")
	}
	if !now.Before(time.Unix(claims.Exp, 0)) {
		return errors.New("expired")
	}
	return nil
}

// NewTLS makes a CA and a server certificate it signs for names (host
// names or IP addresses), both valid for a day. It returns the CA
// certificate as PEM, and the server's certificate with its key as PEM.
func NewTLS(names ...string) (caPEM, certPEM, keyPEM []byte, err error) {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "tokend e2e stand-in CA"},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true,
		KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, nil, nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, nil, nil, err
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	leaf := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: names[0]},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			leaf.IPAddresses = append(leaf.IPAddresses, ip)
		} else {
			leaf.DNSNames = append(leaf.DNSNames, n)
		}
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		return nil, nil, nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(leafKey)
	if err != nil {
		return nil, nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), nil
}

// ServerTLS is the upstream's TLS configuration from NewTLS's certificate
// and key: TLS 1.2 or later.
func ServerTLS(certPEM, keyPEM []byte) (*tls.Config, error) {
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	return n
}
