package main

import (
	"bytes"
	"encoding/base64"
	"errors"
	"flag"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ambient-code/tokend/internal/exchange"
	"github.com/ambient-code/tokend/internal/refresher"
	"github.com/ambient-code/tokend/test/testkit"
)

// pubPEM returns the test kit's RSA public key as PEM.
func pubPEM(testing.TB) string { return testkit.PublicKeyPEM() }

// env is the environment of an encrypted-session tokend over plain http
// inside the cluster, with over applied, as os.Environ gives it: a key
// set to "" is a variable set but empty.
func env(t *testing.T, over map[string]string) []string {
	m := map[string]string{
		"AMBIENT_CP_TOKEN_URL":        "http://ambient-control-plane.ns.svc:8080/token",
		"AMBIENT_CP_TOKEN_PUBLIC_KEY": pubPEM(t),
		"SESSION_ID":                  sessionID,
		"TOKEND_TOKEN_FILE":           filepath.Join(t.TempDir(), "token"),
	}
	maps.Copy(m, over)
	return environ(m)
}

func environ(m map[string]string) []string {
	var kv []string
	for k, v := range m {
		kv = append(kv, k+"="+v)
	}
	return kv
}

// parse is load with the help and flag errors discarded.
func parse(command string, args, environ []string) (*options, error) {
	return load(command, args, environ, io.Discard)
}

// session returns the encrypted-session exchanger o built, or nil in
// another mode.
func session(o *options) *exchange.EncryptedSession {
	e, _ := o.Exchanger.(*exchange.EncryptedSession)
	return e
}

// problems returns the problems of an *invalidError, one by one.
func problems(err error) []error {
	var ie *invalidError
	if !errors.As(err, &ie) {
		return nil
	}
	if j, ok := ie.problems.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{ie.problems}
}

func TestParseDefaultsAndFlagsWin(t *testing.T) {
	c, err := parse("run", nil, env(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.FileMode != 0o640 || c.RefreshInterval != 5*time.Minute || c.InitTimeout != time.Minute ||
		c.MaxBackoff != 30*time.Second || c.HealthAddr != ":12081" || c.logFormat != "text" || c.Auth != authEncryptedSession {
		t.Errorf("defaults: %v %v %v %v %q %q %q", c.FileMode, c.RefreshInterval, c.InitTimeout, c.MaxBackoff, c.HealthAddr, c.logFormat, c.Auth)
	}
	if session(c).SessionID.Reveal() != sessionID || session(c).PublicKey == nil || c.TokenURL.Host != "ambient-control-plane.ns.svc:8080" {
		t.Errorf("environment not read")
	}
	c, err = parse("run", []string{"--refresh-interval=2m", "--file-mode", "0600", "--health-addr="}, env(t, map[string]string{"TOKEND_REFRESH_INTERVAL": "9m"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.RefreshInterval != 2*time.Minute || c.FileMode != 0o600 || c.HealthAddr != "" {
		t.Errorf("flags did not win over env and defaults: %v %v %q", c.RefreshInterval, c.FileMode, c.HealthAddr)
	}
}

// TestScheduleDefaultsAreTheRefreshers: the refresher's defaults are the one
// source of --refresh-interval's and --max-backoff's; the command applies
// them, and its help shows them as they are.
func TestScheduleDefaultsAreTheRefreshers(t *testing.T) {
	c, err := parse("run", nil, env(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.RefreshInterval != refresher.DefaultInterval || c.MaxBackoff != refresher.DefaultMaxBackoff {
		t.Errorf("defaults: interval %v, max backoff %v; want the refresher's %v and %v",
			c.RefreshInterval, c.MaxBackoff, refresher.DefaultInterval, refresher.DefaultMaxBackoff)
	}
	var help bytes.Buffer
	load("run", []string{"-h"}, env(t, nil), &help)
	for _, want := range []string{"(default " + durationText(refresher.DefaultInterval) + ")", "(default " + durationText(refresher.DefaultMaxBackoff) + ")"} {
		if !strings.Contains(help.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, help.String())
		}
	}
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{{5 * time.Minute, "5m"}, {30 * time.Second, "30s"}, {time.Hour, "1h"}, {90 * time.Second, "1m30s"}, {150 * time.Minute, "2h30m"}} {
		if got := durationText(tt.d); got != tt.want {
			t.Errorf("durationText(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestParseKeyForms(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "key.pem")
	os.WriteFile(keyFile, []byte(pubPEM(t)), 0o600)
	for name, over := range map[string]map[string]string{
		"base64":   {"AMBIENT_CP_TOKEN_PUBLIC_KEY": base64.StdEncoding.EncodeToString([]byte(pubPEM(t)))},
		"key file": {"AMBIENT_CP_TOKEN_PUBLIC_KEY": "", "TOKEND_PUBLIC_KEY_FILE": keyFile},
	} {
		if c, err := parse("init", nil, env(t, over)); err != nil || session(c).PublicKey == nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestParseRejects(t *testing.T) {
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "isdir"), 0o755)
	tests := []struct {
		name string
		over map[string]string
		args []string
		want []string
	}{
		{name: "nothing", over: map[string]string{"AMBIENT_CP_TOKEN_URL": "", "AMBIENT_CP_TOKEN_PUBLIC_KEY": "", "SESSION_ID": ""},
			want: []string{"AMBIENT_CP_TOKEN_URL (--token-url): required", "AMBIENT_CP_TOKEN_PUBLIC_KEY (--public-key): required", "SESSION_ID (--session-id): required"}},
		{name: "ftp url", over: map[string]string{"AMBIENT_CP_TOKEN_URL": "ftp://cp/token"}, want: []string{"AMBIENT_CP_TOKEN_URL", "scheme must be http or https"}},
		{name: "userinfo", over: map[string]string{"AMBIENT_CP_TOKEN_URL": "https://u:p@cp/token"}, want: []string{"AMBIENT_CP_TOKEN_URL", "credentials"}},
		{name: "http outside cluster", over: map[string]string{"AMBIENT_CP_TOKEN_URL": "http://example.com/token"}, want: []string{"AMBIENT_CP_TOKEN_URL", "plain http"}},
		{name: "bad key", over: map[string]string{"AMBIENT_CP_TOKEN_PUBLIC_KEY": "not a key!"}, want: []string{"AMBIENT_CP_TOKEN_PUBLIC_KEY (--public-key): neither PEM"}},
		{name: "two keys", over: map[string]string{"TOKEND_PUBLIC_KEY_FILE": "/x"}, want: []string{"not both"}},
		{name: "missing key file", over: map[string]string{"AMBIENT_CP_TOKEN_PUBLIC_KEY": "", "TOKEND_PUBLIC_KEY_FILE": filepath.Join(dir, "nokey")}, want: []string{"TOKEND_PUBLIC_KEY_FILE (--public-key-file): cannot read"}},
		{name: "short session", over: map[string]string{"SESSION_ID": "abc"}, want: []string{"SESSION_ID (--session-id): must be at least 8"}},
		{name: "spaced session", over: map[string]string{"SESSION_ID": "abc defghij"}, want: []string{"SESSION_ID", "whitespace"}},
		{name: "long session", over: map[string]string{"SESSION_ID": strings.Repeat("s", 191)}, want: []string{"SESSION_ID", "more than the 190"}},
		{name: "bad mode", over: map[string]string{"TOKEND_FILE_MODE": "rw-r"}, want: []string{"TOKEND_FILE_MODE (--file-mode): must be an octal"}},
		{name: "unreadable mode", over: map[string]string{"TOKEND_FILE_MODE": "0040"}, want: []string{"owner read"}},
		{name: "writable mode", over: map[string]string{"TOKEND_FILE_MODE": "0666"}, want: []string{"write the token"}},
		{name: "bad duration", over: map[string]string{"TOKEND_REFRESH_INTERVAL": "5 minutes"}, want: []string{"TOKEND_REFRESH_INTERVAL (--refresh-interval): must be a Go duration"}},
		{name: "zero duration", over: map[string]string{"TOKEND_INIT_TIMEOUT": "0s"}, want: []string{"TOKEND_INIT_TIMEOUT (--init-timeout): must be positive"}},
		{name: "no dir", over: map[string]string{"TOKEND_TOKEN_FILE": filepath.Join(dir, "missing", "token")}, want: []string{"TOKEND_TOKEN_FILE (--token-file)", "missing"}},
		{name: "target is dir", over: map[string]string{"TOKEND_TOKEN_FILE": filepath.Join(dir, "isdir")}, want: []string{"TOKEND_TOKEN_FILE", "directory"}},
		{name: "bad log", over: map[string]string{"LOG_FORMAT": "xml", "LOG_LEVEL": "loud"}, want: []string{"LOG_FORMAT", "LOG_LEVEL"}},
		{name: "bad auth", over: map[string]string{"TOKEND_AUTH": "magic"}, want: []string{"TOKEND_AUTH (--auth)"}},
		{name: "bad health addr", over: map[string]string{"TOKEND_HEALTH_ADDR": "8081"}, want: []string{"TOKEND_HEALTH_ADDR"}},
		{name: "missing ca", over: map[string]string{"TOKEND_CA_FILE": filepath.Join(dir, "ca.pem")}, want: []string{"TOKEND_CA_FILE (--ca-file): cannot read"}},
		{name: "missing cp ca", over: map[string]string{"AMBIENT_CP_CA_PATH": filepath.Join(dir, "cp-ca.pem")}, want: []string{"AMBIENT_CP_CA_PATH (--cp-ca-file): cannot read"}},
		{name: "unknown flag", args: []string{"--frobnicate"}, want: []string{"frobnicate"}},
		{name: "stray argument", args: []string{"extra"}, want: []string{"unexpected arguments"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse("run", tt.args, env(t, tt.over))
			var ce *invalidError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want *invalidError", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			if strings.Contains(err.Error(), sessionID) || strings.Contains(err.Error(), "BEGIN PUBLIC KEY") {
				t.Errorf("error quotes a secret:\n%v", err)
			}
		})
	}
}

func TestParseInsecureHTTPPolicy(t *testing.T) {
	for url, ok := range map[string]bool{
		"http://127.0.0.1:8080/token":                          true,
		"http://[::1]:8080/token":                              true,
		"http://localhost:8080/token":                          true,
		"http://cp.ns.svc:8080/token":                          true,
		"http://cp.ns.svc.cluster.local:8080/token":            true,
		"http://cp.ns.svc.cluster.local.:8080/token":           true,
		"http://10.0.0.5:8080/token":                           false,
		"http://cp.example.com/token":                          false,
		"https://cp.example.com/token":                         true,
		"http://svc.evil.com/token":                            false,
		"http://cp.ns.svc.evil.com/token":                      false,
		"http://ambient-control-plane.svc.cluster.local/token": true,
	} {
		_, err := parse("init", nil, env(t, map[string]string{"AMBIENT_CP_TOKEN_URL": url}))
		if (err == nil) != ok {
			t.Errorf("%s: err = %v, want ok=%v", url, err, ok)
		}
		if !ok {
			if _, err := parse("init", []string{"--allow-insecure-http"}, env(t, map[string]string{"AMBIENT_CP_TOKEN_URL": url})); err != nil {
				t.Errorf("%s with --allow-insecure-http: %v", url, err)
			}
		}
	}
}

func TestHelpNeverPrintsEnvironmentValues(t *testing.T) {
	var out bytes.Buffer
	_, err := load("run", []string{"-h"}, env(t, nil), &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err = %v, want flag.ErrHelp", err)
	}
	for _, w := range []string{"--token-url", "$AMBIENT_CP_TOKEN_URL", "$SESSION_ID", "default 0640"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("help lacks %q", w)
		}
	}
	if strings.Contains(out.String(), sessionID) || strings.Contains(out.String(), "BEGIN PUBLIC KEY") {
		t.Errorf("help printed a secret from the environment")
	}
}

func TestParseCheck(t *testing.T) {
	c, err := parse("check", []string{"--max-age=10m"}, []string{"TOKEND_TOKEN_FILE=/nonexistent/token"})
	if err != nil || c.MaxAge != 10*time.Minute || c.TokenFile != "/nonexistent/token" {
		t.Fatalf("check config: %v, %v", c, err)
	}
}
