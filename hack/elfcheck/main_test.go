package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestCheckStatic(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("builds and reads Linux executables")
	}
	dir := t.TempDir()
	text := filepath.Join(dir, "text")
	if err := os.WriteFile(text, []byte("#!/bin/sh\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		file    func(t *testing.T) string
		wantErr string // "" for a static executable
	}{
		{"static Go build", func(t *testing.T) string { return buildStatic(t, dir) }, ""},
		{"dynamic executable", dynamicExecutable, "not static: needs program interpreter"},
		{"not an ELF file", func(*testing.T) string { return text }, "not an ELF file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkStatic(tt.file(t))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("checkStatic: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("checkStatic = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestRunUsage(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(nil, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "usage") {
		t.Fatalf("run() = %d, stderr %q; want 2 and a usage line", code, stderr.String())
	}
}

// buildStatic builds this very command the way hack/build.sh builds tokend.
func buildStatic(t *testing.T, dir string) string {
	out := filepath.Join(dir, "elfcheck")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return out
}

// dynamicExecutable returns a dynamically linked system executable.
func dynamicExecutable(t *testing.T) string {
	for _, p := range []string{"/bin/sh", "/usr/bin/env", "/bin/ls"} {
		if checkStatic(p) != nil {
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	t.Skip("no dynamically linked executable on this machine")
	return ""
}
