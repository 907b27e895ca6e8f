package notify

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/ambient-code/tokend/internal/proc"
)

// Command runs a program on each change, without a shell, as the leader of
// its own process group: a timeout, or the end of tokend, kills the whole
// group (SIGKILL), so that nothing the program started outlives it.
type Command struct {
	// Argv is the program and its arguments (see ParseArgv); Argv[0] is
	// looked up on PATH.
	Argv []string
	// Env is the program's environment; nil means tokend's own.
	Env []string
	// Timeout bounds a run; 30 s when zero. --on-change-timeout.
	Timeout time.Duration
	// Output receives the program's stdout and stderr; nil discards them.
	Output *os.File

	after func(time.Duration) <-chan time.Time // time.After when nil (tests)
}

// Name returns "command".
func (c *Command) Name() string { return "command" }

// Notify runs the program once and waits for it. A non-zero exit status, a
// timeout or a failure to start is an error naming --on-change.
func (c *Command) Notify(ctx context.Context) error {
	p, err := proc.Start(c.Argv, c.Env, nil, c.Output, c.Output)
	if err != nil {
		return fmt.Errorf("notify: --on-change %w", err)
	}
	after, timeout := c.after, cmp.Or(c.Timeout, 30*time.Second)
	if after == nil {
		after = time.After
	}
	select {
	case ws := <-p.Done():
		switch {
		case ws.Exited() && ws.ExitStatus() == 0:
			return nil
		case ws.Signaled():
			return fmt.Errorf("notify: --on-change %s failed: killed by %s", c.Argv[0], ws.Signal())
		}
		return fmt.Errorf("notify: --on-change %s failed: exit status %d", c.Argv[0], proc.ExitCode(ws))
	case <-after(timeout):
		err = fmt.Errorf("notify: --on-change %s did not finish within %s: make it return sooner, or raise --on-change-timeout", c.Argv[0], timeout)
	case <-ctx.Done():
		err = ctx.Err()
	}
	_ = proc.SignalGroup(p.Pid, syscall.SIGKILL)
	<-p.Done()
	return err
}

// ParseArgv splits an --on-change value into a program and its arguments,
// with no shell involved (no expansion, no pipes):
//
//   - a value that starts with "[" is a JSON array of strings, the exec
//     form of a Dockerfile or a Kubernetes command: any argument may hold
//     spaces or quotes;
//   - any other value is split at runs of white space; it may not contain
//     quotes or backslashes, which would suggest a shell's quoting rules
//     that are not applied: use the JSON form for such arguments.
//
// For a pipeline, name a shell: ["/bin/sh", "-c", "..."].
func ParseArgv(s string) ([]string, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "[") {
		var argv []string
		if err := json.Unmarshal([]byte(s), &argv); err != nil {
			return nil, fmt.Errorf("not a JSON array of strings: %v", err)
		}
		if len(argv) == 0 || argv[0] == "" {
			return nil, errors.New("the JSON array must start with the program")
		}
		return argv, nil
	}
	if strings.ContainsAny(s, `"'\`) {
		return nil, errors.New(`holds quotes or backslashes, which are not interpreted: write it as a JSON array, e.g. ["/bin/prog", "an argument"]`)
	}
	argv := strings.Fields(s)
	if len(argv) == 0 {
		return nil, errors.New("empty")
	}
	return argv, nil
}
