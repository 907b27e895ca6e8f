package daemon_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ambient-code/tokend/internal/config"
	"github.com/ambient-code/tokend/internal/daemon"
	"github.com/ambient-code/tokend/internal/secret"
)

// readDoc returns the JSON output's fields, and checks that it describes
// the token in the token file.
func readDoc(t *testing.T, jsonFile, tokenFile string) (map[string]string, []byte) {
	t.Helper()
	raw, err := os.ReadFile(jsonFile)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]string
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("the JSON file is not a JSON object of strings: %v", err)
	}
	tok, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	if doc["token"] != string(tok) || doc["fingerprint"] != secret.Fingerprint(string(tok)) || doc["expires_at"] == "" || doc["written_at"] == "" {
		t.Fatalf("the JSON document does not describe the token file's token %s (fields: fingerprint %s, expires_at %q, written_at %q)",
			secret.Fingerprint(string(tok)), doc["fingerprint"], doc["expires_at"], doc["written_at"])
	}
	return doc, raw
}

// TestJSONOutput: with TOKEND_JSON_FILE, init writes the JSON document
// beside the token file; run writes it too, and restores it, unchanged,
// when it is removed.
func TestJSONOutput(t *testing.T) {
	env, dir := encryptedWorld(t)
	env["TOKEND_JSON_FILE"] = filepath.Join(dir, "token.json")
	get := func(k string) string { return env[k] }
	for _, cmd := range []string{config.CmdInit, config.CmdRun} {
		cfg, err := config.Parse(cmd, nil, get, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Outputs.JSONFile != env["TOKEND_JSON_FILE"] {
			t.Fatalf("%s: JSON file %q, want %q", cmd, cfg.Outputs.JSONFile, env["TOKEND_JSON_FILE"])
		}
	}
	cfg, _ := config.Parse(config.CmdInit, nil, get, io.Discard)
	if err := daemon.Init(t.Context(), cfg, daemon.Deps{Logger: slog.New(slog.DiscardHandler)}); err != nil {
		t.Fatal(err)
	}
	readDoc(t, env["TOKEND_JSON_FILE"], env["TOKEND_TOKEN_FILE"])

	// Set but empty, TOKEND_HEALTH_ADDR disables the health server (no
	// fixed port): ParseEnv tells it from unset.
	cfg, _ = config.ParseEnv(config.CmdRun, nil, func(k string) (string, bool) { v, ok := env[k]; return v, ok }, io.Discard)
	log := &events{ch: make(chan string, 256)}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- daemon.Run(ctx, cfg, daemon.Deps{Logger: slog.New(log)}) }()
	await(t, log.ch, "the first token", func(l string) bool { return strings.HasPrefix(l, "token updated") })
	_, before := readDoc(t, env["TOKEND_JSON_FILE"], env["TOKEND_TOKEN_FILE"])
	if err := os.Remove(env["TOKEND_JSON_FILE"]); err != nil {
		t.Fatal(err)
	}
	await(t, log.ch, "the JSON file restored", func(l string) bool {
		return strings.HasPrefix(l, "token file lost, wrote the stored token again")
	})
	if _, after := readDoc(t, env["TOKEND_JSON_FILE"], env["TOKEND_TOKEN_FILE"]); string(after) != string(before) {
		t.Error("the restored JSON document differs from the one written")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestJSONFileNotTheTokenFile: a JSON file named like the token file is a
// configuration error naming the setting and the fix.
func TestJSONFileNotTheTokenFile(t *testing.T) {
	env, _ := encryptedWorld(t)
	env["TOKEND_JSON_FILE"] = env["TOKEND_TOKEN_FILE"]
	_, err := config.Parse(config.CmdRun, nil, func(k string) string { return env[k] }, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "TOKEND_JSON_FILE (--json-file)") || !strings.Contains(err.Error(), "name another file") {
		t.Fatalf("Parse = %v, want an error naming TOKEND_JSON_FILE and the fix", err)
	}
}
