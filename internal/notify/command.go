package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"time"
)

// DefaultTimeout bounds a Command when its Timeout is zero.
const DefaultTimeout = 30 * time.Second

// Command runs a program on each change, without a shell.
type Command struct {
	// Argv is the program and its arguments (see ParseArgv); Argv[0] is
	// looked up on PATH.
	Argv []string
	// Env is the program's environment; nil means tokend's own.
	Env []string
	// Timeout ends the program (SIGKILL) when it runs longer;
	// DefaultTimeout when zero. --on-change-timeout.
	Timeout time.Duration
	// Output receives the program's stdout and stderr; nil discards them.
	Output io.Writer
}

// Name returns "command".
func (c *Command) Name() string { return "command" }

// Notify runs the program once and waits for it. A non-zero exit status, a
// timeout or a failure to start is an error naming --on-change.
func (c *Command) Notify(ctx context.Context) error {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.Argv[0], c.Argv[1:]...)
	cmd.Env = c.Env
	cmd.Stdout, cmd.Stderr = c.Output, c.Output
	cmd.WaitDelay = time.Second // output pipes held by grandchildren
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return nil
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("notify: --on-change %s did not finish within %s: make it return sooner, or raise --on-change-timeout", c.Argv[0], timeout)
	case errors.As(err, &ee):
		return fmt.Errorf("notify: --on-change %s failed: %s", c.Argv[0], ee.ProcessState)
	case errors.Is(err, exec.ErrNotFound):
		return fmt.Errorf("notify: --on-change %s not found on PATH: give its full path", c.Argv[0])
	}
	return fmt.Errorf("notify: --on-change %s: %w", c.Argv[0], err)
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
// The JSON form is exact and already familiar from container specs; the
// plain form covers the common `/bin/notify-token --reload` without a
// quoting language of its own. For a pipeline, name a shell explicitly:
// ["/bin/sh", "-c", "..."].
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
