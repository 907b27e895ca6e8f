package config

import (
	"bytes"
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
	if c.HealthAddr != ":8081" {
		t.Errorf("unset TOKEND_HEALTH_ADDR gives %q, want the default :8081", c.HealthAddr)
	}
	c, err = ParseEnv(CmdRun, nil, lookup(t, map[string]string{"TOKEND_REFRESH_INTERVAL": "", "TOKEND_FILE_MODE": ""}), &bytes.Buffer{})
	if err != nil {
		t.Fatalf("empty settings other than the health address must mean their default: %v", err)
	}
	if c.RefreshInterval.String() != "5m0s" || c.FileMode != 0o640 {
		t.Errorf("empty settings did not fall back to defaults: %v %v", c.RefreshInterval, c.FileMode)
	}
}
