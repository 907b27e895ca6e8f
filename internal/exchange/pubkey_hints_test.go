package exchange

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"strings"
	"testing"
)

// TestParsePublicKeyHints: the two ways a PEM gets mangled on its way into
// an environment variable each get an error that says what was found and
// how to pass the key instead.
func TestParsePublicKeyHints(t *testing.T) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	good := pemOf(t, "PUBLIC KEY", der)
	ways := []string{"real line breaks", "base64 of the whole PEM", "--public-key-file (TOKEND_PUBLIC_KEY_FILE)"}
	tests := []struct {
		name, in, found string
	}{
		{"literal \\n sequences", strings.ReplaceAll(strings.TrimSpace(good), "\n", `\n`), `found literal \n sequences`},
		{"indented PEM", strings.ReplaceAll(good, "\n", "\n    "), "found indented lines (line 2 starts with a space or tab)"},
		{"cut short", good[:len(good)/2], "no -----END line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParsePublicKey(tt.in)
			if err == nil {
				t.Fatal("ParsePublicKey accepted it")
			}
			for _, want := range append([]string{tt.found}, ways...) {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error does not say %q:\n%v", want, err)
				}
			}
			if strings.Contains(err.Error(), good[30:60]) {
				t.Errorf("error quotes the key:\n%v", err)
			}
		})
	}
}
