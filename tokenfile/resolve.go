package tokenfile

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
)

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
