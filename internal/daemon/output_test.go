package daemon_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

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

// TestJSONOutput: with a JSON file, init writes the JSON document beside
// the token file; run writes it too, and restores it, unchanged, when it
// is removed.
func TestJSONOutput(t *testing.T) {
	cfg, dir := encryptedWorld(t)
	cfg.JSONFile = filepath.Join(dir, "token.json")
	cfg.Command = "init"
	if err := daemon.Init(t.Context(), cfg, daemon.Deps{Logger: slog.New(slog.DiscardHandler)}); err != nil {
		t.Fatal(err)
	}
	readDoc(t, cfg.JSONFile, cfg.TokenFile)

	// No health server (no fixed port).
	cfg.Command = "run"
	log := &events{ch: make(chan string, 256)}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- daemon.Run(ctx, cfg, daemon.Deps{Logger: slog.New(log)}) }()
	// run adopts the token init wrote (handoff.go): stored, unchanged.
	await(t, log.ch, "the first token", func(l string) bool {
		return strings.HasPrefix(l, "token updated") || strings.HasPrefix(l, "token unchanged")
	})
	_, before := readDoc(t, cfg.JSONFile, cfg.TokenFile)
	if err := os.Remove(cfg.JSONFile); err != nil {
		t.Fatal(err)
	}
	await(t, log.ch, "the JSON file restored", func(l string) bool {
		return strings.HasPrefix(l, "token file lost, wrote the stored token again")
	})
	if _, after := readDoc(t, cfg.JSONFile, cfg.TokenFile); string(after) != string(before) {
		t.Error("the restored JSON document differs from the one written")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
