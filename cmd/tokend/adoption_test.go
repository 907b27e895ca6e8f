package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/ambient-code/tokend/test/ostest"
)

// TestAskedForHelpGoesToStdout: help that was asked for, in any form, goes
// to stdout, where `tokend help` prints; a usage error goes to stderr.
func TestAskedForHelpGoesToStdout(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"-h"}, {"run", "-h"}, {"init", "--help"}, {"check", "-h"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			h := newHarness(t)
			if err := h.run(t.Context(), args...); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(h.stdout.String(), "Usage: tokend ") && !strings.Contains(h.stdout.String(), "\nUsage: tokend ") {
				t.Errorf("stdout does not hold the help:\n%s", h.stdout.String())
			}
			if h.stderr.String() != "" {
				t.Errorf("stderr is not empty:\n%s", h.stderr.String())
			}
		})
	}
	h := newHarness(t)
	if code := exitOf(h.run(t.Context(), "run", "--nope")); code != 2 {
		t.Errorf("run --nope: exit %d, want 2", code)
	}
	if h.stdout.Len() != 0 || !strings.Contains(h.stderr.String(), "nope") {
		t.Errorf("run --nope: stdout %q, stderr %q; want the usage error on stderr only", h.stdout.String(), h.stderr.String())
	}
}

// TestFullTokenVolumeAtStartExits1: no free inodes on the token volume is a
// runtime failure (exit 1) that names the cause, not exit 2 for an invalid
// configuration.
func TestFullTokenVolumeAtStartExits1(t *testing.T) {
	h := newHarness(t)
	dir := t.TempDir()
	h.env["TOKEND_TOKEN_FILE"] = filepath.Join(dir, "token")
	var stderr bytes.Buffer
	var code int
	err := ostest.InMountNamespace(t, func() error {
		if err := syscall.Mount("tokend-test", dir, "tmpfs", 0, "size=64k,nr_inodes=2"); err != nil {
			return fmt.Errorf("mount tmpfs: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dir, "other"), nil, 0o600); err != nil {
			return fmt.Errorf("taking the last inode: %w", err)
		}
		code = exitCode(h.run(t.Context(), "run"), &stderr)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	out := stderr.String() + h.stderr.String()
	if code != 1 || strings.Contains(out, "invalid configuration") || !strings.Contains(out, "no free inodes") {
		t.Fatalf("exit %d, want 1 naming the full volume:\n%s", code, out)
	}
	h.assertNoSecrets()
}

// TestHealthPortTakenNamesTheSetting: another server on tokend's health
// port (as an MCP server in the same pod) makes run exit 1 with an error
// that names TOKEND_HEALTH_ADDR.
func TestHealthPortTakenNamesTheSetting(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	h := newHarness(t)
	h.env["TOKEND_HEALTH_ADDR"] = taken.Addr().String()
	if code := exitOf(h.run(t.Context(), "run")); code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if out := h.stderr.String(); !strings.Contains(out, "address already in use") || !strings.Contains(out, "set TOKEND_HEALTH_ADDR (--health-addr) to a free one") {
		t.Errorf("the error does not name the setting:\n%s", out)
	}
}
