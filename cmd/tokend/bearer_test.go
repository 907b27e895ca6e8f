package main

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ambient-code/tokend/internal/daemon"
)

// TestInitBearer runs init in bearer mode against a TLS stand-in for the
// successor control plane as served (GET /token with a capability, the
// token and its expiry back), trusting its CA through
// AMBIENT_CP_CA_CERT_FILE: the configuration's one CA setting and its
// roots reach the exchange, and the token reaches the file.
func TestInitBearer(t *testing.T) {
	const capability = "run-capability-daemon-test"
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/token" || r.Header.Get("Authorization") != "Bearer "+capability || r.ContentLength > 0 {
			http.Error(w, "unexpected request", http.StatusBadRequest)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		json.NewEncoder(w).Encode(map[string]any{"token": "api-token-from-capability", "expires_at": time.Now().Add(5 * time.Minute).Unix()})
	}))
	defer srv.Close()
	dir := t.TempDir()
	caPath := filepath.Join(dir, "cp-ca.pem")
	os.WriteFile(caPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644)
	credPath := filepath.Join(dir, "capability")
	os.WriteFile(credPath, []byte(capability+"\n"), 0o600)
	tokenFile := filepath.Join(dir, "token")
	env := map[string]string{
		"TOKEND_AUTH":             authBearer,
		"AMBIENT_CP_TOKEN_URL":    srv.URL + "/token",
		"TOKEND_CREDENTIAL_FILE":  credPath,
		"AMBIENT_CP_CA_CERT_FILE": caPath,
		"TOKEND_TOKEN_FILE":       tokenFile,
	}
	o, err := parse("init", nil, environ(env))
	if err != nil {
		t.Fatal(err)
	}
	cfg := &o.Config
	var log bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if err := daemon.Init(t.Context(), cfg, daemon.Deps{Logger: logger}); err != nil {
		t.Fatalf("init: %v", err)
	}
	if got, _ := os.ReadFile(tokenFile); string(got) != "api-token-from-capability" {
		t.Errorf("token file holds %d bytes, not the issued token", len(got))
	}
	if out := log.String(); strings.Contains(out, capability) {
		t.Errorf("logs quote the capability:\n%s", out)
	}
}

// TestJSONFileSetting: init and run take TOKEND_JSON_FILE; a JSON file
// named like the token file is a configuration error naming the setting
// and the fix.
func TestJSONFileSetting(t *testing.T) {
	dir := t.TempDir()
	json := filepath.Join(dir, "token.json")
	for _, cmd := range []string{"init", "run"} {
		o, err := parse(cmd, nil, env(t, map[string]string{"TOKEND_JSON_FILE": json}))
		if err != nil {
			t.Fatal(err)
		}
		if o.JSONFile != json {
			t.Fatalf("%s: JSON file %q, want %q", cmd, o.JSONFile, json)
		}
	}
	tokenFile := filepath.Join(dir, "token")
	_, err := parse("run", nil, env(t, map[string]string{"TOKEND_TOKEN_FILE": tokenFile, "TOKEND_JSON_FILE": tokenFile}))
	if err == nil || !strings.Contains(err.Error(), "TOKEND_JSON_FILE (--json-file)") || !strings.Contains(err.Error(), "name another file") {
		t.Fatalf("Parse = %v, want an error naming TOKEND_JSON_FILE and the fix", err)
	}
}
