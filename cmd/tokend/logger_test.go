package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestJSONLogDurationsInSeconds: JSON logs give durations as seconds (a
// float), as Prometheus and most log pipelines expect, at any depth; text
// logs keep the human form.
func TestJSONLogDurationsInSeconds(t *testing.T) {
	var buf bytes.Buffer
	log := newLogger("json", slog.LevelInfo, &buf)
	log.Info("x", slog.Duration("retry_in", 1500*time.Millisecond), slog.Group("g", slog.Duration("d", 2*time.Minute)))
	var line struct {
		RetryIn any `json:"retry_in"`
		G       struct {
			D any `json:"d"`
		} `json:"g"`
	}
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("not JSON: %v: %s", err, buf.String())
	}
	if line.RetryIn != 1.5 || line.G.D != 120.0 {
		t.Errorf("durations %v and %v, want 1.5 and 120 (seconds): %s", line.RetryIn, line.G.D, buf.String())
	}
	buf.Reset()
	log = newLogger("text", slog.LevelInfo, &buf)
	log.Info("x", slog.Duration("retry_in", 1500*time.Millisecond))
	if !strings.Contains(buf.String(), "retry_in=1.5s") {
		t.Errorf("text log lost the human duration: %s", buf.String())
	}
}
