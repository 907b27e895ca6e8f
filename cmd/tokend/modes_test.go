package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ambient-code/tokend/internal/exchange"
	"github.com/ambient-code/tokend/test/testkit"
)

const capability = "capability-secret-0123"

func bearerEnv(t *testing.T, over map[string]string) []string {
	m := map[string]string{
		"TOKEND_AUTH":                 authBearer,
		"AMBIENT_CP_TOKEN_URL":        "https://ambient-control-plane.ns.svc:8443/token",
		"SESSION_ID":                  "",
		"AMBIENT_CP_TOKEN_PUBLIC_KEY": "",
	}
	for k, v := range over {
		m[k] = v
	}
	return env(t, m)
}

func TestParseBearer(t *testing.T) {
	credFile := filepath.Join(t.TempDir(), "capability")
	tests := []struct {
		name     string
		over     map[string]string
		args     []string
		file     string
		value    string
		source   string // the credential's source, as hints name it
		warnings []string
	}{
		{name: "value", over: map[string]string{"TOKEND_CREDENTIAL": capability}, value: capability, source: "TOKEND_CREDENTIAL (--credential)"},
		{name: "the successor's variable", over: map[string]string{bootstrapEnv: capability}, value: capability, source: bootstrapEnv},
		{name: "the file wins over the successor's variable", over: map[string]string{bootstrapEnv: capability, "TOKEND_CREDENTIAL_FILE": credFile},
			file: credFile, source: "TOKEND_CREDENTIAL_FILE (--credential-file) " + credFile},
		{name: "TOKEND_CREDENTIAL wins over the successor's variable", over: map[string]string{bootstrapEnv: "other-capability", "TOKEND_CREDENTIAL": capability},
			value: capability, source: "TOKEND_CREDENTIAL (--credential)"},
		{name: "file not there yet", over: map[string]string{"TOKEND_CREDENTIAL_FILE": credFile}, file: credFile},
		{name: "flags", args: []string{"--credential-file", credFile}, file: credFile},
		{name: "other modes' settings", over: map[string]string{"TOKEND_CREDENTIAL": capability, "SESSION_ID": "sess-secret-42"}, value: capability,
			warnings: []string{"SESSION_ID (--session-id): ignored in bearer mode"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parse("run", tt.args, bearerEnv(t, tt.over))
			if err != nil {
				t.Fatal(err)
			}
			ex, ok := c.Exchanger.(*exchange.Bearer)
			if !ok || ex.CredentialFile != tt.file || ex.Credential.Reveal() != tt.value || ex.URL != "https://ambient-control-plane.ns.svc:8443/token" {
				t.Fatalf("exchanger %T for %q, file %q", c.Exchanger, ex.URL, ex.CredentialFile)
			}
			if tt.source != "" && ex.CredentialSource != tt.source {
				t.Errorf("credential source %q, want %q", ex.CredentialSource, tt.source)
			}
			if c.Roots == nil {
				t.Errorf("no roots for an https token URL")
			}
			if !slices.Equal(c.Warnings, tt.warnings) {
				t.Errorf("warnings %q, want %q", c.Warnings, tt.warnings)
			}
			if strings.Contains(strings.Join(c.Warnings, " "), capability) {
				t.Errorf("a warning quotes the credential")
			}
		})
	}
}

func TestParseBearerRejects(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		over map[string]string
		want []string
	}{
		{name: "no credential", want: []string{"TOKEND_CREDENTIAL (--credential): required in bearer mode (or TOKEND_CREDENTIAL_FILE, or AMBIENT_RUNNER_BOOTSTRAP_TOKEN"}},
		{name: "both", over: map[string]string{"TOKEND_CREDENTIAL": capability, "TOKEND_CREDENTIAL_FILE": filepath.Join(dir, "c")}, want: []string{"TOKEND_CREDENTIAL (--credential): set either"}},
		{name: "spaced", over: map[string]string{"TOKEND_CREDENTIAL": "capability secret"}, want: []string{"TOKEND_CREDENTIAL (--credential): has a whitespace", "offset 10", "HTTP header"}},
		{name: "file is a directory", over: map[string]string{"TOKEND_CREDENTIAL_FILE": dir}, want: []string{"TOKEND_CREDENTIAL_FILE (--credential-file): " + dir + " is a directory"}},
		{name: "the successor's variable spaced", over: map[string]string{bootstrapEnv: "capability secret"}, want: []string{bootstrapEnv + ": has a whitespace", "offset 10"}},
		{name: "plain http outside the cluster", over: map[string]string{"TOKEND_CREDENTIAL": capability, "AMBIENT_CP_TOKEN_URL": "http://example.com/token"},
			want: []string{"AMBIENT_CP_TOKEN_URL (--token-url): plain http to example.com is refused"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse("init", nil, bearerEnv(t, tt.over))
			var ce *invalidError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want *invalidError", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error quotes the credential:\n%v", err)
			}
		})
	}
}

// TestBearerPlainHTTPNeedsTheOptIn: the bearer credential is a capability
// valid for days, so plain http carries it only with an explicit opt-in,
// even to a cluster name or loopback: --allow-insecure-http, or the
// successor runner's own AMBIENT_ALLOW_INSECURE_RUNNER_TRANSPORT=true. Plain
// http loads no roots.
func TestBearerPlainHTTPNeedsTheOptIn(t *testing.T) {
	for _, url := range []string{"http://ambient-control-plane.ns.svc:8080/token", "http://127.0.0.1:8080/token"} {
		for _, tc := range []struct {
			name   string
			over   map[string]string
			args   []string
			refuse bool
		}{
			{name: "no opt-in", refuse: true},
			{name: "TOKEND_ALLOW_INSECURE_HTTP", over: map[string]string{"TOKEND_ALLOW_INSECURE_HTTP": "true"}},
			{name: "--allow-insecure-http", args: []string{"--allow-insecure-http"}},
			{name: "AMBIENT_ALLOW_INSECURE_RUNNER_TRANSPORT", over: map[string]string{"AMBIENT_ALLOW_INSECURE_RUNNER_TRANSPORT": "true"}},
			{name: "AMBIENT_ALLOW_INSECURE_RUNNER_TRANSPORT false", over: map[string]string{"AMBIENT_ALLOW_INSECURE_RUNNER_TRANSPORT": "false"}, refuse: true},
		} {
			t.Run(url+" "+tc.name, func(t *testing.T) {
				over := map[string]string{"TOKEND_CREDENTIAL": capability, "AMBIENT_CP_TOKEN_URL": url}
				for k, v := range tc.over {
					over[k] = v
				}
				c, err := parse("init", tc.args, bearerEnv(t, over))
				if tc.refuse {
					if err == nil || !strings.Contains(err.Error(), "plain http is refused in bearer mode") ||
						!strings.Contains(err.Error(), "TOKEND_ALLOW_INSECURE_HTTP=true") || !strings.Contains(err.Error(), "AMBIENT_ALLOW_INSECURE_RUNNER_TRANSPORT=true") {
						t.Fatalf("err = %v, want a refusal naming both opt-ins", err)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if c.Roots != nil {
					t.Errorf("roots loaded for a plain-http token URL")
				}
			})
		}
	}
}

func TestCASettingIsOne(t *testing.T) {
	a, b := caFile(t), caFile(t)
	https := map[string]string{"AMBIENT_CP_TOKEN_URL": "https://cp.ns.svc:8443/token"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range https {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name string
		over map[string]string
		args []string
		want string // the CA file trusted, or the start of the problem
	}{
		{name: "TOKEND_CA_FILE", over: with("TOKEND_CA_FILE", a), want: a},
		{name: "AMBIENT_CP_CA_PATH", over: with("AMBIENT_CP_CA_PATH", a), want: a},
		{name: "AMBIENT_CP_CA_CERT_FILE", over: with("AMBIENT_CP_CA_CERT_FILE", a), want: a},
		{name: "two variables agree", over: with("TOKEND_CA_FILE", a, "AMBIENT_CP_CA_CERT_FILE", a), want: a},
		{name: "a flag over the variables", over: with("TOKEND_CA_FILE", a, "AMBIENT_CP_CA_PATH", b), args: []string{"--cp-ca-file", b}, want: b},
		{name: "two variables differ", over: with("TOKEND_CA_FILE", a, "AMBIENT_CP_CA_PATH", b),
			want: "TOKEND_CA_FILE (--ca-file): " + a + " differs from AMBIENT_CP_CA_PATH (--cp-ca-file) " + b + ", and they are one setting"},
		{name: "two flags differ", over: https, args: []string{"--ca-file", a, "--cp-ca-file", b},
			want: "TOKEND_CA_FILE (--ca-file): " + a + " differs from AMBIENT_CP_CA_PATH (--cp-ca-file) " + b + ", and they are one setting"},
		{name: "bad file named by its source", over: with("AMBIENT_CP_CA_CERT_FILE", "/nonexistent/ca.pem"), want: "AMBIENT_CP_CA_CERT_FILE: cannot read /nonexistent/ca.pem"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parse("init", tt.args, env(t, tt.over))
			if strings.HasPrefix(tt.want, "/") {
				want, _ := exchange.LoadRoots(tt.want, true)
				if err != nil || !c.Roots.Equal(want) {
					t.Fatalf("err %v; want CA file %s and roots", err, tt.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

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

// TestSecretFlagsAreWarnedAbout: a secret given as a flag is readable by
// every process of the pod in /proc/<pid>/cmdline; the warning names the
// flag and the variable to use, never the value.
func TestSecretFlagsAreWarnedAbout(t *testing.T) {
	c, err := parse("run", []string{"--credential", capability}, bearerEnv(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	want := "--credential is a secret given as a flag: every process of the pod can read it in /proc/<pid>/cmdline, and the pod spec shows it; set TOKEND_CREDENTIAL from a Secret instead"
	if !slices.Equal(c.Warnings, []string{want}) {
		t.Errorf("warnings %q, want %q", c.Warnings, want)
	}
	if strings.Contains(strings.Join(c.Warnings, " "), capability) {
		t.Errorf("a warning quotes the credential")
	}
	c, err = parse("run", nil, bearerEnv(t, map[string]string{"TOKEND_CREDENTIAL": capability}))
	if err != nil || len(c.Warnings) != 0 {
		t.Errorf("the variable: warnings %q, %v; want none", c.Warnings, err)
	}
}

// TestSuccessorVariableInTheDeployedMode: a pod of the successor control
// plane has its capability and no public key; in the deployed mode the
// missing key's message names the capability's variable and the fix.
func TestSuccessorVariableInTheDeployedMode(t *testing.T) {
	_, err := parse("init", nil, env(t, map[string]string{"AMBIENT_CP_TOKEN_PUBLIC_KEY": "", bootstrapEnv: capability}))
	testkit.WantHint(t, err, "AMBIENT_CP_TOKEN_PUBLIC_KEY (--public-key): required in encrypted-session mode, but AMBIENT_RUNNER_BOOTSTRAP_TOKEN is set",
		"set TOKEND_AUTH=bearer (--auth bearer)")
	if strings.Contains(err.Error(), capability) {
		t.Errorf("error quotes the capability:\n%v", err)
	}
}

// TestPublicKeyFileReachesTheExchange: a key given as a file is read again
// at every exchange, so the exchanger gets the path, not only the key.
func TestPublicKeyFileReachesTheExchange(t *testing.T) {
	file := filepath.Join(t.TempDir(), "cp.pub")
	if err := os.WriteFile(file, []byte(testkit.PublicKeyPEM()), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := parse("run", nil, env(t, map[string]string{"AMBIENT_CP_TOKEN_PUBLIC_KEY": "", "TOKEND_PUBLIC_KEY_FILE": file}))
	if err != nil {
		t.Fatal(err)
	}
	if ex, ok := c.Exchanger.(*exchange.EncryptedSession); !ok || ex.PublicKeyFile != file || ex.PublicKey == nil {
		t.Errorf("exchanger %T does not hold the key file %s", c.Exchanger, file)
	}
}
