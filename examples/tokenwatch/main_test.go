package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ambient-code/tokend/internal/secret"
	"github.com/ambient-code/tokend/internal/tokenbytes"
	"github.com/ambient-code/tokend/test/testkit"
)

const deadline = testkit.Patience // bounds waits; no claim about speed

// TestMain lets the test binary stand in for tokenwatch itself, so that the
// process tests run the real main without a separate build.
func TestMain(m *testing.M) {
	if os.Getenv("TOKENWATCH_TEST_BE_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    config
		wantErr []string // substrings of the error; none means success
	}{
		{"flags", []string{"--token-file", "/t", "--poll-interval", "5s"}, nil,
			config{tokenFile: "/t", poll: 5 * time.Second}, nil},
		{"environment", nil, map[string]string{"TOKEND_TOKEN_FILE": "/e", "TOKENWATCH_POLL_INTERVAL": "2s"},
			config{tokenFile: "/e", poll: 2 * time.Second}, nil},
		{"flags win", []string{"--token-file=/f", "--poll-interval=1m"},
			map[string]string{"TOKEND_TOKEN_FILE": "/e", "TOKENWATCH_POLL_INTERVAL": "soon"},
			config{tokenFile: "/f", poll: time.Minute}, nil},
		{"default poll interval", []string{"--token-file", "/t"}, nil,
			config{tokenFile: "/t", poll: 30 * time.Second}, nil},
		{"every problem at once", []string{"extra"}, map[string]string{"TOKENWATCH_POLL_INTERVAL": "soon"},
			config{}, []string{"TOKEND_TOKEN_FILE (--token-file): required", `"soon" is not a duration`, "unexpected arguments"}},
		{"non-positive interval", []string{"--token-file", "/t", "--poll-interval", "0s"}, nil,
			config{}, []string{"must be positive"}},
		{"unknown flag", []string{"--nope"}, nil, config{}, []string{"not defined"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parse(tt.args, func(k string) string { return tt.env[k] }, io.Discard)
			if len(tt.wantErr) == 0 {
				if err != nil || got != tt.want {
					t.Fatalf("parse = %+v, %v; want %+v", got, err, tt.want)
				}
				return
			}
			var ue *usageError
			if !errors.As(err, &ue) {
				t.Fatalf("parse error %v is not a usage error", err)
			}
			for _, s := range tt.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
			if code := exitCode(err, io.Discard); code != 2 {
				t.Errorf("exit code %d, want 2", code)
			}
		})
	}
}

// TestRun drives run against a token file that appears late and rotates,
// and checks each printed line.
func TestRun(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	exp := time.Now().Add(time.Hour).Truncate(time.Second).UTC()
	tokens := []string{testkit.JWTExpiring(exp), "opaque-token-2"}

	lines := newLineWriter()
	var stderr testkit.Buffer
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"--token-file", path}, noEnv, lines, &stderr) }()

	writeRename(t, path, tokens[0])
	line := lines.next(t)
	for _, want := range []string{"token changed", "fingerprint=" + secret.Fingerprint(tokens[0]),
		"previous=none", "expires=" + exp.Format(time.RFC3339) + " (in "} {
		if !strings.Contains(line, want) {
			t.Errorf("first line %q lacks %q", line, want)
		}
	}
	writeRename(t, path, tokens[1])
	line = lines.next(t)
	for _, want := range []string{"fingerprint=" + secret.Fingerprint(tokens[1]),
		"previous=" + secret.Fingerprint(tokens[0]), "expires=unknown"} {
		if !strings.Contains(line, want) {
			t.Errorf("second line %q lacks %q", line, want)
		}
	}
	// tokend withdraws the token, then a new one comes.
	writeRename(t, path, string(tokenbytes.Withdrawal("token endpoint answered 403 Forbidden: runner access revoked")))
	line = lines.next(t)
	if want := `token withdrawn previous=` + secret.Fingerprint(tokens[1]) + ` reason="token endpoint answered 403 Forbidden: runner access revoked"`; !strings.HasSuffix(strings.TrimSuffix(line, "\n"), want) {
		t.Errorf("withdrawal line %q, want it to end %q", line, want)
	}
	writeRename(t, path, tokens[0])
	if line = lines.next(t); !strings.Contains(line, "fingerprint="+secret.Fingerprint(tokens[0])+" previous=none") {
		t.Errorf("line after the withdrawal %q", line)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run returned %v", err)
	}
	for _, tok := range tokens {
		if strings.Contains(lines.all(), tok) || strings.Contains(stderr.String(), tok) {
			t.Fatal("a token was printed")
		}
	}
}

// TestSignals runs tokenwatch as a process and stops it with each signal.
func TestSignals(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "token")
			writeRename(t, path, "signal-token")
			cmd := exec.Command(os.Args[0], "--token-file", path)
			cmd.Env = append(os.Environ(), "TOKENWATCH_TEST_BE_MAIN=1", "GORACE=atexit_sleep_ms=0")
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			first := make(chan string, 1)
			go func() {
				line, _ := bufio.NewReader(stdout).ReadString('\n')
				first <- line
				_, _ = io.Copy(io.Discard, stdout)
			}()
			select {
			case line := <-first:
				if !strings.Contains(line, "token changed") {
					t.Fatalf("first line %q", line)
				}
			case <-time.After(deadline):
				_ = cmd.Process.Kill()
				t.Fatal("no output")
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			if err := cmd.Wait(); err != nil {
				t.Fatalf("after %v: %v, want exit status 0", sig, err)
			}
		})
	}
}

func TestNoFlagsExitsTwo(t *testing.T) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "TOKENWATCH_TEST_BE_MAIN=1", "GORACE=atexit_sleep_ms=0", "TOKEND_TOKEN_FILE=")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Fatalf("exit: %v, want status 2", err)
	}
	if !bytes.Contains(out, []byte("--token-file")) {
		t.Fatalf("output %q does not name the flag", out)
	}
}

func noEnv(string) string { return "" }

// lineWriter collects what run prints and hands it out line by line.
type lineWriter struct {
	mu    sync.Mutex // guards buf and seen
	buf   bytes.Buffer
	seen  strings.Builder
	lines chan string
}

func newLineWriter() *lineWriter { return &lineWriter{lines: make(chan string, 100)} }

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seen.Write(p)
	w.buf.Write(p)
	for {
		line, err := w.buf.ReadString('\n')
		if err != nil {
			w.buf.WriteString(line) // incomplete: keep for the next write
			return len(p), nil
		}
		w.lines <- line
	}
}

func (w *lineWriter) all() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.seen.String()
}

func (w *lineWriter) next(t *testing.T) string {
	t.Helper()
	select {
	case line := <-w.lines:
		return line
	case <-time.After(deadline):
		t.Fatalf("no line printed within %v", deadline)
		return ""
	}
}

// writeRename replaces the file at path the way tokend does.
func writeRename(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}
