package exchange

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/ambient-code/tokend/test/testkit"
)

func pemOf(t *testing.T, typ string, der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

func TestParsePublicKey(t *testing.T) {
	k2048 := testkit.RSAKey()
	k1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pkix := func(pub any) []byte {
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	good := pemOf(t, "PUBLIC KEY", pkix(&k2048.PublicKey))
	tests := []struct {
		name, in, wantErr string
	}{
		{name: "raw PEM", in: good},
		{name: "raw PEM with surrounding space", in: "\n  " + good + "\n"},
		{name: "base64 PEM", in: base64.StdEncoding.EncodeToString([]byte(good))},
		{name: "base64 PEM wrapped", in: wrap(base64.StdEncoding.EncodeToString([]byte(good)))},
		{name: "base64 PEM unpadded", in: base64.RawStdEncoding.EncodeToString([]byte(good))},
		{name: "PKCS1", in: pemOf(t, "RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&k2048.PublicKey))},
		{name: "empty", in: "  ", wantErr: "empty"},
		{name: "garbage", in: "not a key!", wantErr: "neither PEM"},
		{name: "base64 of garbage", in: base64.StdEncoding.EncodeToString([]byte("hello")), wantErr: "other than PEM"},
		{name: "truncated PEM", in: good[:40], wantErr: "no complete PEM block"},
		{name: "private key type", in: pemOf(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(k2048)), wantErr: "is not PUBLIC KEY"},
		{name: "corrupt DER", in: pemOf(t, "PUBLIC KEY", []byte("junk")), wantErr: "valid public key"},
		{name: "EC key", in: pemOf(t, "PUBLIC KEY", pkix(&ec.PublicKey)), wantErr: "not RSA"},
		{name: "1024 bits", in: pemOf(t, "PUBLIC KEY", pkix(&k1024.PublicKey)), wantErr: "1024 bits"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, err := ParsePublicKey(tt.in)
			if tt.wantErr == "" {
				if err != nil || key.N.Cmp(k2048.N) != 0 {
					t.Fatalf("ParsePublicKey: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
			}
		})
	}
}

func wrap(s string) string {
	var b strings.Builder
	for len(s) > 64 {
		b.WriteString(s[:64] + "\n")
		s = s[64:]
	}
	return b.String() + s
}
