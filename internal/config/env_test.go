package config

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// lookup turns env's map into os.LookupEnv semantics: a key present with
// an empty value is set but empty.
func lookup(t *testing.T, over map[string]string) func(string) (string, bool) {
	get := env(t, nil)
	return func(k string) (string, bool) {
		if v, ok := over[k]; ok {
			return v, true
		}
		v := get(k)
		return v, v != ""
	}
}

// TestParseEnvSetButEmptyHealthAddr: TOKEND_HEALTH_ADDR set but empty
// disables the health server, as the README says; unset keeps the default.
// Other settings keep treating an empty value as unset.
func TestParseEnvSetButEmptyHealthAddr(t *testing.T) {
	c, err := ParseEnv(CmdRun, nil, lookup(t, map[string]string{"TOKEND_HEALTH_ADDR": ""}), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.HealthAddr != "" {
		t.Errorf("TOKEND_HEALTH_ADDR= gives health address %q, want none", c.HealthAddr)
	}
	c, err = ParseEnv(CmdRun, nil, lookup(t, nil), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.HealthAddr != ":12081" {
		t.Errorf("unset TOKEND_HEALTH_ADDR gives %q, want the default :12081", c.HealthAddr)
	}
	c, err = ParseEnv(CmdRun, nil, lookup(t, map[string]string{"TOKEND_REFRESH_INTERVAL": "", "TOKEND_FILE_MODE": ""}), &bytes.Buffer{})
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
		{CmdInit, "TOKEND_REFRESH_INTERVAL", "soon"},
		{CmdInit, "TOKEND_REFRESH_INTERVAL", "-5m"},
		{CmdInit, "TOKEND_HEALTH_ADDR", "8081"},
		{CmdInit, "TOKEND_CHECK_MAX_AGE", "a while"},
		{CmdRun, "TOKEND_CHECK_MAX_AGE", "10"},
		{CmdCheck, "TOKEND_REFRESH_INTERVAL", "soon"},
		{CmdCheck, "TOKEND_INIT_TIMEOUT", "1 minute"},
		{CmdCheck, "TOKEND_MAX_BACKOFF", "0"},
		{CmdCheck, "TOKEND_HEALTH_ADDR", "localhost"},
		{CmdCheck, "TOKEND_FILE_MODE", "0666"},
		{CmdCheck, "TOKEND_ALLOW_INSECURE_HTTP", "maybe"},
		{CmdCheck, "TOKEND_AUTH", "service_account"},
	}
	for _, tt := range tests {
		t.Run(tt.cmd+" "+tt.env+"="+tt.value, func(t *testing.T) {
			_, err := ParseEnv(tt.cmd, nil, lookup(t, map[string]string{tt.env: tt.value}), &bytes.Buffer{})
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("%s accepted %s=%q (err %v)", tt.cmd, tt.env, tt.value, err)
			}
			if len(ce.Problems) != 1 || !strings.HasPrefix(ce.Problems[0].Error(), tt.env+" ") {
				t.Errorf("problems do not name %s first: %v", tt.env, ce)
			}
		})
	}
	good := map[string]string{
		"TOKEND_REFRESH_INTERVAL": "2m", "TOKEND_HEALTH_ADDR": ":9090", "TOKEND_CHECK_MAX_AGE": "10m",
		"TOKEND_INIT_TIMEOUT": "30s", "TOKEND_MAX_BACKOFF": "10s", "TOKEND_FILE_MODE": "0600",
		"TOKEND_ALLOW_INSECURE_HTTP": "false", "TOKEND_AUTH": AuthEncryptedSession,
	}
	for _, cmd := range []string{CmdInit, CmdRun, CmdCheck} {
		if _, err := ParseEnv(cmd, nil, lookup(t, good), &bytes.Buffer{}); err != nil {
			t.Errorf("%s refused good settings: %v", cmd, err)
		}
	}
}
