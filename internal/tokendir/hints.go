package tokendir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// dirHint explains a failure to create or write a file in dir, for the
// failures a deployment causes: "; " and the fix, or "" for any other.
func dirHint(dir string, err error) string {
	switch {
	case errors.Is(err, fs.ErrPermission):
		return "; " + permissionHint(dir)
	case errors.Is(err, syscall.EROFS):
		return "; the volume holding " + dir + " is mounted read-only: mount it read-write in tokend's container"
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return "; the volume holding " + dir + " is full (no free space or no free inodes): free some, or give it more room (an emptyDir's sizeLimit)"
	}
	return ""
}

// permissionHint states who tokend runs as and who may write dir.
func permissionHint(dir string) string {
	groups, _ := os.Getgroups()
	who := fmt.Sprintf("tokend runs as uid %d, gid %d", os.Getuid(), os.Getgid())
	if len(groups) > 0 {
		who += fmt.Sprintf(" (supplementary groups %v)", groups)
	}
	owner := ""
	if fi, err := os.Stat(dir); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			owner = fmt.Sprintf(", and %s is owned by uid %d, gid %d with mode %04o", dir, st.Uid, st.Gid, fi.Mode().Perm())
		}
	}
	return who + owner + ": set the pod's securityContext.fsGroup (Kubernetes then makes the volume group-writable by it), " +
		"or make the volume's directory writable by that uid or gid; a fresh emptyDir is writable by every user"
}

// renameHint explains a rename onto path that failed because path is a
// mount point: a Kubernetes subPath mount or a bind mount of the file.
func renameHint(path string, err error) string {
	if !errors.Is(err, syscall.EBUSY) {
		return ""
	}
	return "; " + path + " is a mount point (a Kubernetes subPath mount, or a bind mount of the single file), which no rename may replace: " +
		"mount the directory instead, without subPath, and point the token file into it"
}
