package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestRunRewritesEveryInterval runs the peer with a short interval and
// stops it, on its hook, at the third write; the file then holds the last
// write (a fourth may race the stop).
func TestRunRewritesEveryInterval(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	last := 0
	go func() {
		done <- run(ctx, []string{"--interval", "1ms", "--file", path}, io.Discard, func(n int) {
			last = n
			if n == 3 {
				cancel()
			}
		})
	}()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if last < 3 || string(got) != strconv.Itoa(last)+"\n" {
		t.Errorf("file holds %q after %d writes, want the last write", got, last)
	}
	if m, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".token.tmp*")); len(m) > 0 {
		t.Errorf("temporary files left: %v", m)
	}
}

func TestRunRefusesBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--interval", "5m"}, "--file is required"},
		{[]string{"--file", "x", "--interval", "0s"}, "must be positive"},
	} {
		err := run(t.Context(), tc.args, io.Discard, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("run(%q) = %v, want an error saying %q", tc.args, err, tc.want)
		}
	}
}
