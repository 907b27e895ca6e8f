package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/ambient-code/tokend/test/fakeissuer"
)

// TestUnknownVariableIsAnError: a variable with tokend's prefixes that no
// setting of any command reads is a typo or a setting that went: every
// command refuses it with status 2 before any request, naming the closest
// setting and the fix.
func TestUnknownVariableIsAnError(t *testing.T) {
	tests := []struct {
		cmd, name, closest string
	}{
		{"run", "TOKEND_REFRESH_INTERVALL", "TOKEND_REFRESH_INTERVAL (--refresh-interval)"},
		{"init", "TOKEND_REFRESH_INTERVALL", "TOKEND_REFRESH_INTERVAL (--refresh-interval)"},
		{"init", "AMBIENT_CP_TOKEN_UR", "AMBIENT_CP_TOKEN_URL (--token-url)"},
		{"check", "AMBIENT_CP_CA_CERT_FIEL", "AMBIENT_CP_CA_CERT_FILE"},
		{"refresh", "TOKEND_REFRESH_TIMOUT", "TOKEND_REFRESH_TIMEOUT (--timeout)"},
		{"run", "TOKEND_EXEC_TOKEN_ENV_NAME", "TOKEND_EXEC_TOKEN_ENV (--token-env)"},
	}
	for _, tt := range tests {
		t.Run(tt.cmd+" "+tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.env[tt.name] = "1m"
			err := h.run(t.Context(), tt.cmd)
			if code := exitOf(err); code != 2 {
				t.Fatalf("exit %d, want 2 (err %v)", code, err)
			}
			want := tt.name + ": tokend has no such setting (the closest is " + tt.closest + "): rename or remove the variable"
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error lacks %q:\n%v", want, err)
			}
			if n := h.iss.Requests(); n != 0 {
				t.Errorf("%d requests with an invalid configuration", n)
			}
			h.assertNoSecrets()
		})
	}
}

// TestOtherVariablesPass: variables of other programs pass, among them
// those with an AMBIENT_ prefix that is not tokend's and those Kubernetes
// sets for a Service named tokend or tokend-metrics.
func TestOtherVariablesPass(t *testing.T) {
	for _, name := range []string{
		"AMBIENT_PROJECT_ID", "AMBIENT_RUNNER_BOOTSTRAP_TOKEN", "AMBIENT_CP_URL", "TOKENDTEST_X",
		"TOKEND_SERVICE_HOST", "TOKEND_SERVICE_PORT", "TOKEND_SERVICE_PORT_METRICS", "TOKEND_PORT",
		"TOKEND_PORT_12081_TCP", "TOKEND_PORT_12081_TCP_PROTO", "TOKEND_PORT_12081_TCP_PORT", "TOKEND_PORT_12081_TCP_ADDR",
		"TOKEND_METRICS_SERVICE_HOST",
	} {
		if _, err := parse("init", nil, env(t, map[string]string{name: "10.0.0.1"})); err != nil {
			t.Errorf("%s refused: %v", name, err)
		}
	}
}

// TestProxyListenNotLoopbackIsInvalidConfiguration: a credential proxy
// address other than loopback is invalid configuration (status 2, found
// before anything starts), not a failure of run.
func TestProxyListenNotLoopbackIsInvalidConfiguration(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", "10.0.0.1:0", "proxy", "unix:"} {
		h := newHarness(t)
		h.env["TOKEND_PROXY_LISTEN"] = addr
		h.env["AMBIENT_API_SERVER_URL"] = "http://127.0.0.1:1"
		err := h.run(t.Context(), "run")
		if code := exitOf(err); code != 2 {
			t.Fatalf("%s: exit %d, want 2 (err %v)", addr, code, err)
		}
		if !strings.Contains(err.Error(), "TOKEND_PROXY_LISTEN (--proxy-listen): ") || !strings.Contains(err.Error(), "use 127.0.0.1:PORT") &&
			!strings.Contains(err.Error(), "use unix:PATH") {
			t.Errorf("%s: error does not name the setting and the fix: %v", addr, err)
		}
		if n := h.iss.Requests(); n != 0 {
			t.Errorf("%s: %d requests", addr, n)
		}
	}
}

// TestErrorsSayTheFix: the errors a newcomer meets first name the setting
// and say what to do.
func TestErrorsSayTheFix(t *testing.T) {
	h := newHarness(t)
	err := h.run(t.Context(), "check")
	if exitOf(err) != 1 || !strings.Contains(err.Error(), "no token yet; tokend init or run writes it, with the same TOKEND_TOKEN_FILE (--token-file)") {
		t.Errorf("check without a token file: %v", err)
	}
	if out := h.stderr.String(); strings.Count(out, "check failed") != 1 {
		t.Errorf("the log does not say check failed once:\n%s", out)
	}

	h = newHarness(t)
	h.env["TOKEND_TOKEN_FILE"] = filepath.Join(h.dir, "missing", "token")
	err = h.run(t.Context(), "init")
	if exitOf(err) != 2 || !strings.Contains(err.Error(), "TOKEND_TOKEN_FILE (--token-file): directory "+filepath.Join(h.dir, "missing")) ||
		!strings.Contains(err.Error(), "create the directory, or mount the token volume there") {
		t.Errorf("init into a missing directory: %v", err)
	}

	h = newHarness(t)
	h.env["TOKEND_INIT_TIMEOUT"], h.env["TOKEND_MAX_BACKOFF"] = "200ms", "50ms"
	h.iss.Push(repeat(fakeissuer.Status(503), 100)...)
	err = h.run(t.Context(), "init")
	if exitOf(err) != 1 || !strings.Contains(err.Error(), "no token before the deadline") ||
		!strings.Contains(err.Error(), "within TOKEND_INIT_TIMEOUT (--init-timeout) 200ms: make sure the pod reaches AMBIENT_CP_TOKEN_URL") {
		t.Errorf("init past its deadline: %v", err)
	}
	h.assertNoSecrets()
}

// TestUsageListsEveryCommand: the help names every command, exec and
// refresh included.
func TestUsageListsEveryCommand(t *testing.T) {
	h := newHarness(t)
	if err := h.run(t.Context(), "help"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"init", "run", "exec", "refresh", "check", "version", "help"} {
		if !strings.Contains(h.stdout.String(), "\n  "+c+" ") {
			t.Errorf("help lacks %s:\n%s", c, h.stdout.String())
		}
	}
}
