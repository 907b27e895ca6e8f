package tokenfile

import (
	"cmp"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ambient-code/tokend/internal/fswatch"
)

// rebuild creates the fsnotify watcher, while there is none, and installs
// the watches. On failure the loop polls until the next tick tries again. A
// failure is logged when it starts, and the recovery when it ends.
func (l *loop) rebuild() {
	l.rebuilt = true
	n, err := fswatch.New(l.w.hooks.newNotify)
	if err != nil {
		if msg := err.Error(); msg != l.buildErr {
			l.buildErr = msg
			l.w.log.Error("tokenfile: cannot watch the token file; polling only",
				"err", err, "interval", l.w.poll)
		}
		return
	}
	if l.buildErr != "" {
		l.w.log.Info("tokenfile: watching the token file again")
	}
	l.n, l.addErr, l.buildErr = n, "", ""
	l.sync()
	if l.w.hooks.watching != nil {
		l.w.hooks.watching(n.Watcher)
	}
}

func (l *loop) closeNotify() {
	if l.n != nil {
		_ = l.n.Close()
		l.n = nil
	}
}

// sync makes the watches match the directories that currently lead to the
// file. It reports whether the watches changed, in which case the file must
// be read again. It repeats until nothing changes, so that a directory
// created or removed while it ran is not missed.
func (l *loop) sync() (changed bool) {
	if l.n == nil {
		return false
	}
	for range maxSyncRounds {
		real, dirs := resolve(l.w.path) // real tells in-place writes to the file from other events
		l.resolved = cmp.Or(real, l.w.path)
		if !l.apply(dirs) {
			return changed
		}
		changed = true
	}
	return changed
}

// maxSyncRounds bounds sync against directories that come and go without
// pause; polling covers whatever it gives up on.
const maxSyncRounds = 16

// apply adds the watches in want that are missing and removes the others.
// It reports whether it added one, or found that a directory in want has
// gone in the meantime: either way, resolve must be asked again.
func (l *loop) apply(want []string) (again bool) {
	have := l.n.WatchList()
	for _, d := range want {
		if slices.Contains(have, d) {
			continue
		}
		// Added, or removed since resolve looked: look again.
		err := l.n.Add(d)
		if err == nil || errors.Is(err, fs.ErrNotExist) {
			again = true
		} else if msg := err.Error(); msg != l.addErr {
			l.addErr = msg
			l.w.log.Warn("tokenfile: cannot watch a directory; polling covers it", "dir", d, "err", err)
		}
	}
	for _, d := range have {
		if !slices.Contains(want, d) {
			_ = l.n.Remove(d) // it may be gone already
		}
	}
	return again
}

// maxLinks bounds the symlinks followed while resolving a path, as the
// kernel's ELOOP limit does.
const maxLinks = 40

// resolve follows path component by component, as the kernel does, and
// returns the file it leads to (real, "" if it leads nowhere yet) and the
// directories to watch (Run's step 1): each real directory that holds a
// symlink met on the way, and the real directory that holds the file, or
// the deepest one that exists yet. path must be absolute.
func resolve(path string) (real string, dirs []string) {
	todo := strings.Split(path, string(filepath.Separator))
	cur := string(filepath.Separator)
	for links := 0; len(todo) > 0; {
		comp := todo[0]
		todo = todo[1:]
		switch comp {
		case "", ".":
			continue
		case "..":
			cur = filepath.Dir(cur)
			continue
		}
		next := filepath.Join(cur, comp)
		fi, err := os.Lstat(next)
		if err != nil {
			return "", appendNew(dirs, cur)
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			if len(todo) > 0 && !fi.IsDir() {
				return "", appendNew(dirs, cur)
			}
			cur = next
			continue
		}
		dirs = appendNew(dirs, cur)
		target, err := os.Readlink(next)
		if links++; err != nil || links > maxLinks {
			return "", dirs
		}
		if filepath.IsAbs(target) {
			cur = string(filepath.Separator)
		}
		todo = append(strings.Split(target, string(filepath.Separator)), todo...)
	}
	return cur, appendNew(dirs, filepath.Dir(cur))
}

func appendNew(dirs []string, d string) []string {
	if slices.Contains(dirs, d) {
		return dirs
	}
	return append(dirs, d)
}
