// Package ostest runs a test's code under conditions the test process does
// not otherwise have: as a user without root's privileges, or in a private
// mount namespace. Tests run as root in CI, and root reads and writes any
// file whatever its mode, so a permission failure can only be shown by
// giving up root.
//
// Both helpers run fn on a goroutine locked to its own OS thread and change
// that thread alone (Linux credentials and mount namespaces belong to a
// thread; the raw system calls used here, unlike syscall.Setuid, do not
// spread to the process). The goroutine never unlocks the thread, so the
// Go runtime ends the thread when fn returns, and no other goroutine ever
// runs with the changed thread. Code in fn must not start goroutines that
// touch the file system: they would run on other threads, unchanged.
//
// Linux only. Safe for concurrent use: each call has its own thread.
package ostest

import (
	"fmt"
	"os"
	"runtime"
	"syscall"
	"testing"
)

// NobodyID is the user and group id AsNonRoot switches to: the id the
// tokend image runs as.
const NobodyID = 65532

// AsNonRoot runs fn as a process without root's privileges. When the test
// already runs as a user other than root, fn runs as that user; as root, fn
// runs on a thread whose user and group are NobodyID, with every capability
// dropped (the kernel clears them when a thread leaves uid 0). It returns
// fn's result, and fails the test if the switch itself fails.
func AsNonRoot(t testing.TB, fn func() error) error {
	t.Helper()
	if os.Geteuid() != 0 {
		return fn()
	}
	return onThread(t, func() error {
		if _, _, e := syscall.RawSyscall(syscall.SYS_SETGROUPS, 0, 0, 0); e != 0 {
			return fmt.Errorf("ostest: setgroups: %w", e)
		}
		if _, _, e := syscall.RawSyscall(syscall.SYS_SETRESGID, NobodyID, NobodyID, NobodyID); e != 0 {
			return fmt.Errorf("ostest: setresgid: %w", e)
		}
		if _, _, e := syscall.RawSyscall(syscall.SYS_SETRESUID, NobodyID, NobodyID, NobodyID); e != 0 {
			return fmt.Errorf("ostest: setresuid: %w", e)
		}
		return nil
	}, fn)
}

// InMountNamespace runs fn in a private mount namespace, where fn may mount
// and bind-mount freely: nothing it mounts is seen outside, and all of it
// goes when fn returns. It needs root (CAP_SYS_ADMIN); without it the test
// is skipped, saying so.
func InMountNamespace(t testing.TB, fn func() error) error {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to make a private mount namespace (CAP_SYS_ADMIN)")
	}
	return onThread(t, func() error {
		if err := syscall.Unshare(syscall.CLONE_NEWNS); err != nil {
			return fmt.Errorf("ostest: unshare: %w", err)
		}
		// Keep mounts made in here from propagating back to the host.
		if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
			return fmt.Errorf("ostest: making / private: %w", err)
		}
		return nil
	}, fn)
}

// onThread runs setup and then fn on a fresh locked thread that dies after.
// A setup failure fails the test.
func onThread(t testing.TB, setup, fn func() error) error {
	t.Helper()
	type result struct{ setup, fn error }
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
		if err := setup(); err != nil {
			done <- result{setup: err}
			return
		}
		done <- result{fn: fn()}
	}()
	r := <-done
	if r.setup != nil {
		t.Fatal(r.setup)
	}
	return r.fn
}
