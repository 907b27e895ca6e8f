package config

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const refreshCredential = "refresh-cred-secret-77"

func caFile(t *testing.T) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	return path
}

func TestParseServiceAccount(t *testing.T) {
	dir := t.TempDir()
	present := filepath.Join(dir, "present")
	os.WriteFile(present, []byte("eyJ.x.y\n"), 0o600)
	sa := map[string]string{
		"TOKEND_AUTH":                           "service-account",
		"AMBIENT_CP_TOKEN_URL":                  "https://ambient-control-plane.ns.svc:8443/token",
		"AMBIENT_WORKLOAD_IDENTITY_PATH":        present,
		"AMBIENT_CAPABILITY_REFRESH_CREDENTIAL": refreshCredential,
		"AMBIENT_CP_CA_PATH":                    caFile(t),
		"AMBIENT_CP_TOKEN_PUBLIC_KEY":           "",
		"SESSION_ID":                            "",
	}
	with := func(over map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range sa {
			m[k] = v
		}
		for k, v := range over {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name     string
		over     map[string]string
		args     []string
		warnings []string
	}{
		{name: "complete", over: with(nil)},
		{name: "token file not projected yet", over: with(map[string]string{"AMBIENT_WORKLOAD_IDENTITY_PATH": filepath.Join(dir, "later")}),
			warnings: []string{"AMBIENT_WORKLOAD_IDENTITY_PATH (--identity-path): " + filepath.Join(dir, "later") + " does not exist yet"}},
		{name: "legacy settings left in place", over: with(map[string]string{"AMBIENT_CP_TOKEN_PUBLIC_KEY": pubPEM(t), "SESSION_ID": sessionID}),
			warnings: []string{"AMBIENT_CP_TOKEN_PUBLIC_KEY (--public-key), SESSION_ID (--session-id): ignored in service-account mode"}},
		{name: "allow-insecure-http", over: with(nil), args: []string{"--allow-insecure-http"},
			warnings: []string{"TOKEND_ALLOW_INSECURE_HTTP (--allow-insecure-http) has no effect"}},
		{name: "flags", over: map[string]string{"AMBIENT_CP_TOKEN_PUBLIC_KEY": "", "SESSION_ID": ""},
			args: []string{"--auth=service-account", "--token-url=https://cp.example.com/token", "--identity-path=" + present, "--refresh-credential=" + refreshCredential}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(CmdRun, tt.args, env(t, tt.over), &bytes.Buffer{})
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if c.Auth != AuthServiceAccount || c.TokenURL.Scheme != "https" || serviceAccount(c).IdentityPath == "" ||
				serviceAccount(c).RefreshCredential.Reveal() != refreshCredential || session(c) != nil {
				t.Errorf("config %+v", c)
			}
			all := strings.Join(c.Warnings, "\n")
			if len(c.Warnings) != len(tt.warnings) {
				t.Errorf("warnings:\n%s\nwant %d", all, len(tt.warnings))
			}
			for _, w := range tt.warnings {
				if !strings.Contains(all, w) {
					t.Errorf("warnings lack %q:\n%s", w, all)
				}
			}
			for _, s := range []string{refreshCredential, sessionID, "BEGIN PUBLIC KEY"} {
				if strings.Contains(all, s) || strings.Contains(serviceAccount(c).RefreshCredential.String(), s) {
					t.Errorf("a warning or String() quotes a secret")
				}
			}
		})
	}
}

func TestParseEncryptedSessionIgnoresServiceAccountSettings(t *testing.T) {
	c, err := Parse(CmdInit, nil, env(t, map[string]string{
		"AMBIENT_WORKLOAD_IDENTITY_PATH":        "/var/run/secrets/tokens/sa",
		"AMBIENT_CAPABILITY_REFRESH_CREDENTIAL": refreshCredential,
		"AMBIENT_CP_CA_PATH":                    caFile(t),
	}), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	want := "AMBIENT_WORKLOAD_IDENTITY_PATH (--identity-path), AMBIENT_CAPABILITY_REFRESH_CREDENTIAL (--refresh-credential): ignored in encrypted-session mode"
	if len(c.Warnings) != 1 || c.Warnings[0] != want || c.CAFile == "" {
		t.Errorf("warnings %q, CA %q; want %q and the CA kept", c.Warnings, c.CAFile, want)
	}
}

func TestRefreshCredentialNeverInErrors(t *testing.T) {
	_, err := Parse(CmdRun, nil, env(t, map[string]string{
		"TOKEND_AUTH":                           "service-account",
		"AMBIENT_CP_TOKEN_URL":                  "http://cp/token",
		"AMBIENT_CAPABILITY_REFRESH_CREDENTIAL": refreshCredential + "\x01",
	}), &bytes.Buffer{})
	if err == nil || strings.Contains(err.Error(), refreshCredential) {
		t.Fatalf("err = %v: want an error that does not quote the credential", err)
	}
}

func TestLoadRootsSeveralFiles(t *testing.T) {
	a, b := caFile(t), caFile(t)
	if _, err := LoadRoots(a, "", b); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "bad.pem")
	os.WriteFile(bad, []byte("not pem"), 0o644)
	if _, err := LoadRoots(a, bad); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("err = %v, want one naming %s", err, bad)
	}
}
