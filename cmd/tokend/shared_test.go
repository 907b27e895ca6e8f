package main

import (
	"strings"
	"testing"
)

// lookup is env: a key of over set to "" is set but empty.
func lookup(t *testing.T, over map[string]string) []string { return env(t, over) }

// TestParseEnvSetButEmptyHealthAddr: TOKEND_HEALTH_ADDR set but empty
// disables the health server, as the README says; unset keeps the default.
// Other settings keep treating an empty value as unset.
func TestParseEnvSetButEmptyHealthAddr(t *testing.T) {
	c, err := parse("run", nil, lookup(t, map[string]string{"TOKEND_HEALTH_ADDR": ""}))
	if err != nil {
		t.Fatal(err)
	}
	if c.HealthAddr != "" {
		t.Errorf("TOKEND_HEALTH_ADDR= gives health address %q, want none", c.HealthAddr)
	}
	c, err = parse("run", nil, lookup(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.HealthAddr != ":12081" {
		t.Errorf("unset TOKEND_HEALTH_ADDR gives %q, want the default :12081", c.HealthAddr)
	}
	c, err = parse("run", nil, lookup(t, map[string]string{"TOKEND_REFRESH_INTERVAL": "", "TOKEND_FILE_MODE": ""}))
	if err != nil {
		t.Fatalf("empty settings other than the health address must mean their default: %v", err)
	}
	if c.RefreshInterval.String() != "5m0s" || c.FileMode != 0o640 {
		t.Errorf("empty settings did not fall back to defaults: %v %v", c.RefreshInterval, c.FileMode)
	}
}

// TestEveryCommandValidatesEverySettingGiven: an init container and its
// sidecar share one environment, so init (and check) refuse a malformed
// setting that only another command reads, naming it; a good one passes.
func TestEveryCommandValidatesEverySettingGiven(t *testing.T) {
	tests := []struct {
		cmd, env, value string
	}{
		{"init", "TOKEND_REFRESH_INTERVAL", "soon"},
		{"init", "TOKEND_REFRESH_INTERVAL", "-5m"},
		{"init", "TOKEND_HEALTH_ADDR", "8081"},
		{"init", "TOKEND_CHECK_MAX_AGE", "a while"},
		{"run", "TOKEND_CHECK_MAX_AGE", "10"},
		{"check", "TOKEND_REFRESH_INTERVAL", "soon"},
		{"check", "TOKEND_INIT_TIMEOUT", "1 minute"},
		{"check", "TOKEND_MAX_BACKOFF", "0"},
		{"check", "TOKEND_HEALTH_ADDR", "localhost"},
		{"check", "TOKEND_FILE_MODE", "0666"},
		{"check", "TOKEND_ALLOW_INSECURE_HTTP", "maybe"},
		{"check", "TOKEND_AUTH", "service_account"},
	}
	for _, tt := range tests {
		t.Run(tt.cmd+" "+tt.env+"="+tt.value, func(t *testing.T) {
			_, err := parse(tt.cmd, nil, lookup(t, map[string]string{tt.env: tt.value}))
			ps := problems(err)
			if ps == nil {
				t.Fatalf("%s accepted %s=%q (err %v)", tt.cmd, tt.env, tt.value, err)
			}
			if len(ps) != 1 || !strings.HasPrefix(ps[0].Error(), tt.env+" ") {
				t.Errorf("problems do not name %s first: %v", tt.env, err)
			}
		})
	}
	good := map[string]string{
		"TOKEND_REFRESH_INTERVAL": "2m", "TOKEND_HEALTH_ADDR": ":9090", "TOKEND_CHECK_MAX_AGE": "10m",
		"TOKEND_INIT_TIMEOUT": "30s", "TOKEND_MAX_BACKOFF": "10s", "TOKEND_FILE_MODE": "0600",
		"TOKEND_ALLOW_INSECURE_HTTP": "false", "TOKEND_AUTH": authEncryptedSession,
	}
	for _, cmd := range []string{"init", "run", "check"} {
		if _, err := parse(cmd, nil, lookup(t, good)); err != nil {
			t.Errorf("%s refused good settings: %v", cmd, err)
		}
	}
}
