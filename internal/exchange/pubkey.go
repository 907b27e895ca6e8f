package exchange

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
)

// MinKeyBits is the smallest RSA modulus ParsePublicKey accepts.
const MinKeyBits = 2048

// ParsePublicKey reads the control plane's RSA public key as raw PEM (the
// value starts with "-----") or as the standard base64 of that PEM. The
// block must be "PUBLIC KEY" (PKIX) or "RSA PUBLIC KEY" (PKCS #1) holding
// an RSA key of at least MinKeyBits bits. Errors describe what was found
// without quoting the input, and end with the ways to pass a key.
func ParsePublicKey(s string) (*rsa.PublicKey, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("empty")
	}
	if !strings.HasPrefix(s, "-----") {
		// Padded or not: RawStdEncoding takes either once the padding goes.
		dec, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(strings.Join(strings.Fields(s), ""), "="))
		if err != nil {
			return nil, errors.New("neither PEM (starting with -----) nor base64 of a PEM; " + howToPass)
		}
		if s = strings.TrimSpace(string(dec)); !strings.HasPrefix(s, "-----") {
			return nil, errors.New("base64 decodes to something other than PEM; " + howToPass)
		}
	}
	block, _ := pem.Decode([]byte(s))
	if block == nil {
		return nil, fmt.Errorf("no complete PEM block: %s; %s", pemProblem(s), howToPass)
	}
	var pub any
	var err error
	switch block.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	default:
		return nil, fmt.Errorf("PEM block type %q is not PUBLIC KEY", block.Type)
	}
	if err != nil {
		return nil, errors.New("PEM block does not hold a valid public key")
	}
	key, ok := pub.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("public key is %T, not RSA", pub)
	}
	if bits := key.N.BitLen(); bits < MinKeyBits {
		return nil, fmt.Errorf("RSA key has %d bits, fewer than the %d required", bits, MinKeyBits)
	}
	return key, nil
}

// ReadPublicKeyFile reads the file at path and parses its content as
// ParsePublicKey does. Errors name the file.
func ReadPublicKeyFile(path string) (*rsa.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %v", path, errors.Unwrap(err))
	}
	key, err := ParsePublicKey(string(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return key, nil
}

// howToPass is the fix every malformed-key error ends with.
const howToPass = "pass the PEM itself with real line breaks and no indentation, " +
	"the base64 of the whole PEM file on one line (base64 -w0 key.pem), " +
	"or the PEM file through --public-key-file (TOKEND_PUBLIC_KEY_FILE)"

// pemProblem says what a PEM-looking value that pem.Decode refused holds
// instead, without quoting it.
func pemProblem(s string) string {
	if strings.Contains(s, `\n`) {
		return `found literal \n sequences (a backslash and an n) where the PEM needs line breaks`
	}
	lines := strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
	for i, l := range lines[1:] {
		if l != "" && (l[0] == ' ' || l[0] == '\t') {
			return fmt.Sprintf("found indented lines (line %d starts with a space or tab), as when a PEM is pasted into an indented YAML value", i+2)
		}
	}
	if !strings.Contains(s, "-----END ") {
		return "found a -----BEGIN line but no -----END line (the value is cut short)"
	}
	return "found -----BEGIN and -----END lines, but not a well-formed block between them"
}
