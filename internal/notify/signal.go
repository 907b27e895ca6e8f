package notify

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// Signal sends a signal to the process whose pid is in PIDFile. The file
// is read again at each notification, so the consumer may restart and
// write its new pid. Signalling another container's process needs a pod
// with shareProcessNamespace: true, and the same user (or CAP_KILL).
//
// A pid file that is missing, empty, or names a process that does not
// exist is the consumer restarting: the Runner retries it (see Runner).
// One that names tokend itself is refused: tokend's refresh signals would
// turn each notification into another exchange, without end.
type Signal struct {
	// PIDFile holds the consumer's pid in decimal (surrounding white space
	// is ignored); --notify-pid-file.
	PIDFile string
	// Sig is the signal to send; --notify-signal.
	Sig syscall.Signal
}

// Name returns "signal".
func (s *Signal) Name() string { return "signal" }

// Notify reads the pid file and signals that process. Its errors name the
// setting and what to change; those the Runner retries are marked so.
func (s *Signal) Notify(context.Context) error {
	data, err := os.ReadFile(s.PIDFile)
	if errors.Is(err, fs.ErrNotExist) {
		return retryable{fmt.Errorf("notify: --notify-pid-file %s does not exist: the consumer must write its pid there once it handles the signal (for example `trap reload HUP; echo $$ > %s`)", s.PIDFile, s.PIDFile)}
	}
	if err != nil {
		return fmt.Errorf("notify: reading --notify-pid-file: %w", err)
	}
	text := strings.TrimSpace(string(data))
	if text == "" {
		return retryable{fmt.Errorf("notify: --notify-pid-file %s is empty, not a process id: the consumer must write its pid there, in decimal", s.PIDFile)}
	}
	pid, err := strconv.Atoi(text)
	if err != nil || pid <= 1 {
		if len(text) > 20 {
			text = text[:20] + "..."
		}
		return fmt.Errorf("notify: --notify-pid-file %s holds %q, not a process id above 1: write the consumer's pid, in decimal", s.PIDFile, text)
	}
	if pid == os.Getpid() {
		return fmt.Errorf("notify: --notify-pid-file %s names tokend itself (pid %d): the consumer must write its own pid there", s.PIDFile, pid)
	}
	err = syscall.Kill(pid, s.Sig)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, syscall.ESRCH):
		return retryable{fmt.Errorf("notify: process %d named in --notify-pid-file %s does not exist (or is in another process namespace): set shareProcessNamespace: true on the pod, and have the consumer rewrite the file when it restarts", pid, s.PIDFile)}
	case errors.Is(err, syscall.EPERM):
		return fmt.Errorf("notify: not permitted to send %s to process %d (--notify-pid-file %s): run tokend as the consumer's user, or add the KILL capability", s.Sig, pid, s.PIDFile)
	}
	return fmt.Errorf("notify: sending %s to process %d: %w", s.Sig, pid, err)
}
