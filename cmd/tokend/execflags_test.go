package main

import (
	"bytes"
	"errors"
	"flag"
	"maps"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ambient-code/tokend/internal/child"
)

func TestParseExec(t *testing.T) {
	c, err := parse("exec", []string{"--token-env", "API_TOKEN", "--change-policy", "restart", "--stop-signal", "INT", "--", "mcp-server", "--port", "8080"},
		env(t, map[string]string{"TOKEND_REFRESH_SOCKET": "/run/t/.tokend.sock"}))
	if err != nil {
		t.Fatal(err)
	}
	e := c.Exec
	if !slices.Equal(e.Argv, []string{"mcp-server", "--port", "8080"}) || e.TokenEnv != "API_TOKEN" || e.TokenFileEnv != "TOKEND_TOKEN_FILE" ||
		e.Policy != child.PolicyRestart || e.StopSignal != syscall.SIGINT || e.ReloadSignal != syscall.SIGHUP || e.Grace != 10*time.Second {
		t.Errorf("exec: %+v", e)
	}
	if c.Consumers.RefreshSocket != "/run/t/.tokend.sock" || c.RefreshInterval != 5*time.Minute {
		t.Errorf("consumers %+v, interval %s", c.Consumers, c.RefreshInterval)
	}
}

func TestParseExecProblems(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"mcp-server"}, []string{"the command to run is missing"}},
		{[]string{"--"}, []string{"the command to run is missing"}},
		{[]string{"--change-policy", "reload", "--reload-signal", "KILL", "--token-env", "9X", "--grace-period", "0s", "--", "x"},
			[]string{"TOKEND_EXEC_CHANGE_POLICY (--change-policy): must be none, signal or restart", "TOKEND_EXEC_RELOAD_SIGNAL (--reload-signal): \"KILL\" is not a signal",
				"TOKEND_EXEC_TOKEN_ENV (--token-env): \"9X\" is not a variable name", "TOKEND_EXEC_GRACE_PERIOD (--grace-period): must be positive"}},
		{[]string{"--on-change", "x", "--", "x"}, []string{"TOKEND_ON_CHANGE (--on-change): tokend exec runs no on-change command: tell the child with --change-policy"}},
		{[]string{"--notify-signal", "HUP", "--", "x"}, []string{"--notify-pid-file): required with --notify-signal"}},
	} {
		_, err := parse("exec", tc.args, env(t, nil))
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%q: error %v, want %q", tc.args, err, w)
			}
		}
	}
}

// TestExecRefusesOnChange: run's on-change command, given to exec by its
// variable (an environment shared with a run sidecar) or its flag, is not
// silently ignored: exec exits 2 naming the setting and the fix, and runs
// nothing.
func TestExecRefusesOnChange(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
	}{
		{"variable", []string{"exec", "--", "true"}, map[string]string{"TOKEND_ON_CHANGE": "/bin/reload"}},
		{"flag", []string{"exec", "--on-change", "/bin/reload", "--", "true"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			maps.Copy(h.env, tc.env)
			err := h.run(t.Context(), tc.args...)
			var stderr bytes.Buffer
			if code := exitCode(err, &stderr); code != 2 {
				t.Fatalf("exit %d, want 2: %v", code, err)
			}
			for _, want := range []string{"TOKEND_ON_CHANGE (--on-change)", "--change-policy signal or restart"} {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("stderr %q lacks %q", stderr.String(), want)
				}
			}
			if _, err := os.Stat(h.file); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("exec wrote the token file before refusing its configuration: %v", err)
			}
		})
	}
	var help bytes.Buffer
	if _, err := load("exec", []string{"-h"}, env(t, nil), &help); !errors.Is(err, flag.ErrHelp) || strings.Contains(help.String(), "on-change") {
		t.Errorf("exec -h lists --on-change, which exec refuses: %v\n%s", err, help.String())
	}
}

func TestParseExecHelp(t *testing.T) {
	var out bytes.Buffer
	if _, err := load("exec", []string{"-h"}, env(t, nil), &out); !errors.Is(err, flag.ErrHelp) || !strings.Contains(out.String(), "--change-policy") {
		t.Errorf("exec -h: %v\n%s", err, out.String())
	}
}

func TestParseRunConsumers(t *testing.T) {
	c, err := parse("run", []string{"--notify-signal", "SIGUSR1", "--notify-pid-file", "/run/app.pid", "--on-change", `["/bin/reload", "a b"]`, "--remove-on-exit"}, env(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	k := c.Consumers
	if k.NotifySignal != syscall.SIGUSR1 || k.NotifyPIDFile != "/run/app.pid" || !slices.Equal(k.OnChange, []string{"/bin/reload", "a b"}) ||
		k.OnChangeTimeout != 30*time.Second || !k.RemoveOnExit || k.RefreshSocket != "" {
		t.Errorf("consumers: %+v", k)
	}
	_, err = parse("run", []string{"--on-change", `/bin/echo "a b"`}, env(t, nil))
	if err == nil || !strings.Contains(err.Error(), "TOKEND_ON_CHANGE (--on-change): holds quotes") {
		t.Errorf("quoted --on-change: %v", err)
	}
}

func TestParseRefresh(t *testing.T) {
	c, err := parse("refresh", []string{"--timeout", "5s"}, env(t, nil))
	if err != nil || c.refreshTimeout != 5*time.Second || c.Consumers.RefreshSocket != "" {
		t.Fatalf("refresh: %v %q, %v", c.refreshTimeout, c.Consumers.RefreshSocket, err)
	}
}
