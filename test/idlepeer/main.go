// Command idlepeer is the reference that scripts/idle-wakeups.sh measures
// tokend against: the least a Go sidecar pays while idle. It sleeps on one
// timer for --interval, writes --file atomically (a temporary file in the
// same directory, then a rename), and sleeps again, until SIGINT or
// SIGTERM. It holds no other timer, goroutine or listener, so its wake-ups
// are the refresh timer's and the Go runtime's own (sysmon, the forced
// collection every two minutes). It is not part of the tokend image.
//
//	idlepeer --interval 5m --file /tmp/peer/token
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr, nil); err != nil {
		fmt.Fprintln(os.Stderr, "idlepeer:", err)
		os.Exit(1)
	}
}

// run is idlepeer without the process. wrote, when set, is called after
// each write with how many there have been (tests wait on it).
func run(ctx context.Context, args []string, stderr io.Writer, wrote func(n int)) error {
	fs := flag.NewFlagSet("idlepeer", flag.ContinueOnError)
	fs.SetOutput(stderr)
	interval := fs.Duration("interval", 5*time.Minute, "time between two writes of --file")
	file := fs.String("file", "", "the file rewritten at every interval (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case *file == "":
		return errors.New("--file is required: name the file to rewrite at every interval")
	case *interval <= 0:
		return fmt.Errorf("--interval %s must be positive, e.g. 5m", *interval)
	}
	t := time.NewTimer(*interval)
	defer t.Stop()
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := write(*file, []byte(strconv.Itoa(n)+"\n")); err != nil {
			return err
		}
		if wrote != nil {
			wrote(n)
		}
		t.Reset(*interval)
	}
}

// write replaces path with data by a rename, as a token sidecar does.
func write(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
