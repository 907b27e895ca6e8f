package main

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestReleaseImage builds tokend's image as the README says, with
// hack/image.sh (the release binary of hack/build.sh), and holds it to the
// Dockerfile's final stage: the binary where the Dockerfile copies it, its
// user, entrypoint and command. It then runs the binary from the image as
// that user. The build takes a while: -short skips it.
func TestReleaseImage(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds tokend")
	}
	buildWhoami(t) // only for its Linux check
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	df := readDockerfile(t, filepath.Join(root, "Dockerfile"))
	out := filepath.Join(t.TempDir(), "tokend-image.tar")
	cmd := exec.Command(filepath.Join(root, "hack", "image.sh"))
	cmd.Env = append(os.Environ(), "OUT="+out, "VERSION=v0.0.0-imagetest", "COMMIT=0000000image", "IMAGE=registry.example/tokend:imagetest")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("hack/image.sh: %v\n%s", err, msg)
	}
	a := readArchive(t, out)
	c := a.config.Config
	if a.name != "registry.example/tokend:imagetest" {
		t.Errorf("image name %q, want IMAGE's", a.name)
	}
	if c.User != df.user || !slices.Equal(c.Entrypoint, df.entrypoint) || !slices.Equal(c.Cmd, df.cmd) {
		t.Errorf("user %q entrypoint %q cmd %q; the Dockerfile's: %q %q %q", c.User, c.Entrypoint, c.Cmd, df.user, df.entrypoint, df.cmd)
	}
	if e := a.entry(t, strings.TrimPrefix(df.binary, "/")); e.hdr.Mode != 0o755 || e.hdr.Uid != 0 {
		t.Errorf("%s: mode %o owner %d, want 755 and root", df.binary, e.hdr.Mode, e.hdr.Uid)
	}
	runInImage(t, a, []string{"version"}, "v0.0.0-imagetest (commit 0000000image")
}

// dockerfile is what the Dockerfile's final stage says of the image.
type dockerfile struct {
	binary          string // where COPY puts tokend
	user            string
	entrypoint, cmd []string
}

// readDockerfile reads the final stage's COPY, USER, ENTRYPOINT and CMD
// (exec form).
func readDockerfile(t *testing.T, path string) dockerfile {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var df dockerfile
	s := bufio.NewScanner(f)
	for s.Scan() {
		instr, arg, _ := strings.Cut(strings.TrimSpace(s.Text()), " ")
		var err error
		switch instr {
		case "FROM":
			df = dockerfile{}
		case "COPY":
			if f := strings.Fields(arg); len(f) > 0 {
				df.binary = f[len(f)-1]
			}
		case "USER":
			df.user = arg
		case "ENTRYPOINT":
			err = json.Unmarshal([]byte(arg), &df.entrypoint)
		case "CMD":
			err = json.Unmarshal([]byte(arg), &df.cmd)
		}
		if err != nil {
			t.Fatalf("%s: %s %s: want the exec form, a JSON array: %v", path, instr, arg, err)
		}
	}
	if df.binary == "" || df.user == "" || len(df.entrypoint) == 0 {
		t.Fatalf("%s: the final stage lacks COPY, USER or ENTRYPOINT: %+v", path, df)
	}
	return df
}
