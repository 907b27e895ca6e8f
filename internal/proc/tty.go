package proc

import (
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// foregroundTerminal returns f when it is a terminal whose foreground
// process group is tokend's own, else nil.
func foregroundTerminal(f *os.File) *os.File {
	fd := int(f.Fd())
	if _, err := unix.IoctlGetTermios(fd, unix.TCGETS); err != nil {
		return nil
	}
	if fg, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP); err != nil || fg != syscall.Getpgrp() {
		return nil
	}
	return f
}

// restoreForeground gives the terminal's foreground back to tokend's
// group when the group pgid still holds it. tokend is in the background
// until then, and the kernel refuses tcsetpgrp from the background unless
// SIGTTOU is ignored or blocked: it is ignored for the call, with
// reaper.mu held so that no process starts meanwhile and inherits the
// ignored signal.
func restoreForeground(tty *os.File, pgid int) {
	fd := int(tty.Fd())
	if fg, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP); err != nil || fg != pgid {
		return
	}
	signal.Ignore(syscall.SIGTTOU)
	defer signal.Reset(syscall.SIGTTOU)
	_ = unix.IoctlSetPointerInt(fd, unix.TIOCSPGRP, syscall.Getpgrp())
}
