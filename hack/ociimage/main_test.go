package main

import (
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// whoami is a small program to put in an image: it reports the user it
// runs as, that user's name in /etc/passwd, and whether /tmp is writable.
const whoami = `package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

func main() {
	name := "?"
	data, _ := os.ReadFile("/etc/passwd")
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Split(line, ":"); len(f) > 2 && f[2] == strconv.Itoa(os.Getuid()) {
			name = f[0]
		}
	}
	tmp := "writable"
	if err := os.WriteFile("/tmp/probe", nil, 0o600); err != nil {
		tmp = err.Error()
	}
	fmt.Printf("uid=%d gid=%d user=%s tmp=%s args=%q\n", os.Getuid(), os.Getgid(), name, tmp, os.Args[1:])
}
`

// whoamiBinary builds whoami once for the package's tests, static, as
// hack/build.sh builds tokend.
var whoamiBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "ociimage-test")
	if err != nil {
		return "", err
	}
	buildDir = dir
	for name, body := range map[string]string{"go.mod": "module whoami\n\ngo 1.25\n", "main.go": whoami} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			return "", err
		}
	}
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", "whoami", ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return filepath.Join(dir, "whoami"), nil
})

// buildDir holds whoami; TestMain removes it.
var buildDir string

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

func buildWhoami(t *testing.T) string {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("builds and runs a Linux executable")
	}
	bin, err := whoamiBinary()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// ociimage runs the command as its main does and returns its status and
// output.
func ociimage(t *testing.T, env map[string]string, args ...string) (int, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(args, func(k string) string { return env[k] }, &stdout, &stderr)
	return code, stdout.String() + stderr.String()
}

// TestImage builds an image around a static program, reads the archive back
// as a runtime would, and runs the program from the unpacked layer as the
// image's user.
func TestImage(t *testing.T) {
	bin := buildWhoami(t)
	out := filepath.Join(t.TempDir(), "image.tar")
	code, msg := ociimage(t, nil, "-o", out, "-name", "registry.example/whoami:v1",
		"-add", bin+":/usr/bin/whoami", "-symlink", "/whoami:usr/bin/whoami",
		"-entrypoint", "/whoami", "-cmd", "first", "-cmd", "second", "-env", "GREETING=hello")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, msg)
	}
	t.Log(strings.TrimSpace(msg))
	a := readArchive(t, out)

	c := a.config
	if a.name != "registry.example/whoami:v1" || c.OS != "linux" || c.Architecture != runtime.GOARCH {
		t.Errorf("name %q, platform %s/%s; want registry.example/whoami:v1 on linux/%s", a.name, c.OS, c.Architecture, runtime.GOARCH)
	}
	if c.Config.User != "65532:65532" || !slices.Equal(c.Config.Entrypoint, []string{"/whoami"}) ||
		!slices.Equal(c.Config.Cmd, []string{"first", "second"}) || !slices.Equal(c.Config.Env, []string{defaultPath, "GREETING=hello"}) {
		t.Errorf("config %+v", c.Config)
	}
	src, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []struct {
		name     string
		mode     int64
		uid      int
		typeflag byte
	}{
		{"usr/", 0o755, 0, '5'}, {"usr/bin/", 0o755, 0, '5'}, {"usr/bin/whoami", 0o755, 0, '0'},
		{"whoami", 0o777, 0, '2'}, {"etc/passwd", 0o644, 0, '0'}, {"home/nonroot/", 0o700, 65532, '5'}, {"tmp/", 0o1777, 0, '5'},
	} {
		e := a.entry(t, want.name)
		if e.hdr.Mode != want.mode || e.hdr.Uid != want.uid || e.hdr.Typeflag != want.typeflag || !e.hdr.ModTime.Equal(time.Unix(0, 0)) {
			t.Errorf("%s: mode %o uid %d type %c mtime %v; want %o, %d, %c, the epoch", want.name, e.hdr.Mode, e.hdr.Uid, e.hdr.Typeflag, e.hdr.ModTime, want.mode, want.uid, want.typeflag)
		}
	}
	if !bytes.Equal(a.entry(t, "usr/bin/whoami").data, src) {
		t.Error("the layer's /usr/bin/whoami differs from the file added")
	}
	if got := string(a.entry(t, "etc/passwd").data); !strings.Contains(got, "\nnonroot:x:65532:65532:") {
		t.Errorf("/etc/passwd has no nonroot user 65532:\n%s", got)
	}
	runInImage(t, a, nil, "uid=65532 gid=65532 user=nonroot tmp=writable args=[\"first\" \"second\"]")
}

// runInImage runs the image's entrypoint with its command, or with args
// when given, in its unpacked layer, chrooted, as its user, with its
// environment: what a runtime does, less the namespaces. It needs root.
func runInImage(t *testing.T, a *archive, cmdArgs []string, want string) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Log("not root: the image is not run (chroot and a change of user need root)")
		return
	}
	root := a.unpack(t)
	uid, gid, err := parseUser(a.config.Config.User)
	if err != nil {
		t.Fatal(err)
	}
	if cmdArgs == nil {
		cmdArgs = a.config.Config.Cmd
	}
	args := append(slices.Clone(a.config.Config.Entrypoint), cmdArgs...)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = a.config.Config.Env
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root, Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%q in the image: %v\n%s", args, err, out)
	}
	if got := strings.TrimSpace(string(out)); !strings.Contains(got, want) {
		t.Fatalf("%q in the image printed %q, want %q", args, got, want)
	}
}

// TestReproducible: the same inputs give the same archive, byte for byte;
// another time stamp gives another.
func TestReproducible(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "data")
	if err := os.WriteFile(file, []byte("some data\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var archives [3][]byte
	for i, epoch := range []string{"1700000000", "1700000000", "1700000001"} {
		out := filepath.Join(dir, "image.tar")
		if code, msg := ociimage(t, map[string]string{"SOURCE_DATE_EPOCH": epoch}, "-o", out, "-add", file+":/data", "-platform", "linux/arm64"); code != 0 {
			t.Fatalf("exit %d: %s", code, msg)
		}
		var err error
		if archives[i], err = os.ReadFile(out); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(archives[0], archives[1]) {
		t.Error("two builds from the same inputs differ")
	}
	if bytes.Equal(archives[1], archives[2]) {
		t.Error("SOURCE_DATE_EPOCH changed nothing")
	}
	if a := readArchive(t, filepath.Join(dir, "image.tar")); a.config.Architecture != "arm64" || a.config.Created != "2023-11-14T22:13:21Z" {
		t.Errorf("platform %s/%s, created %s: want -platform's and SOURCE_DATE_EPOCH's", a.config.OS, a.config.Architecture, a.config.Created)
	}
}

// TestErrors: each bad input names the flag and says what to give instead,
// with exit status 2 for the command line and 1 for the files; no archive
// is left behind.
func TestErrors(t *testing.T) {
	bin := buildWhoami(t)
	dir := t.TempDir()
	text := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(text, []byte("not an executable\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "image.tar")
	tests := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"no -o", []string{"-add", bin + ":/whoami"}, 2, []string{"-o is required"}},
		{"no file", []string{"-o", out}, 2, []string{"no -add", "-add bin/tokend:/tokend"}},
		{"no colon", []string{"-o", out, "-add", bin}, 2, []string{"is not SRC:DST"}},
		{"relative destination", []string{"-o", out, "-add", bin + ":whoami"}, 2, []string{`"whoami" must be a clean absolute path`}},
		{"destination twice", []string{"-o", out, "-add", bin + ":/w", "-symlink", "/w:x"}, 2, []string{"/w is given twice"}},
		{"root user", []string{"-o", out, "-add", bin + ":/w", "-user", "0:0"}, 2, []string{"-user", "non-root user", "65532:65532"}},
		{"named user", []string{"-o", out, "-add", bin + ":/w", "-user", "nonroot"}, 2, []string{"-user", "numeric UID:GID"}},
		{"digest in name", []string{"-o", out, "-add", bin + ":/w", "-name", "r.example/w@sha256:00"}, 2, []string{"-name", "without spaces or a digest"}},
		{"upper-case repository", []string{"-o", out, "-add", bin + ":/w", "-name", "R.example/W:v1"}, 2, []string{"lower case"}},
		{"bad time", []string{"-o", out, "-add", bin + ":/w", "-created", "yesterday"}, 2, []string{"-created", "RFC 3339"}},
		{"missing file", []string{"-o", out, "-add", filepath.Join(dir, "absent") + ":/w"}, 1, []string{"-add", "no such file"}},
		{"a directory", []string{"-o", out, "-add", dir + ":/w"}, 1, []string{"not a regular file", "one by one"}},
		{"no executable", []string{"-o", out, "-add", text + ":/notes.txt"}, 1, []string{"no ELF executable", "-platform linux/amd64"}},
		{"no output directory", []string{"-o", filepath.Join(dir, "absent", "image.tar"), "-add", bin + ":/w"}, 1, []string{"-o", "does not exist"}},
	}
	if sh := dynamicExecutable(); sh != "" {
		tests = append(tests, struct {
			name string
			args []string
			code int
			want []string
		}{"dynamic executable", []string{"-o", out, "-add", sh + ":/bin/sh"}, 1, []string{"dynamically linked", "CGO_ENABLED=0"}})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, msg := ociimage(t, nil, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d: %s", code, tt.code, msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("output %q lacks %q", msg, w)
				}
			}
			if _, err := os.Stat(out); err == nil {
				t.Error("an archive was written")
			}
			if left, _ := filepath.Glob(filepath.Join(dir, ".image.tar.tmp*")); len(left) > 0 {
				t.Errorf("left behind: %v", left)
			}
		})
	}
}

// dynamicExecutable returns a dynamically linked executable of this
// machine, or "" where it has none.
func dynamicExecutable() string {
	for _, name := range []string{"sh", "env", "ls"} {
		p, err := exec.LookPath(name)
		if err != nil {
			continue
		}
		if f, err := elf.Open(p); err == nil {
			dynamic := slices.ContainsFunc(f.Progs, func(p *elf.Prog) bool { return p.Type == elf.PT_INTERP })
			f.Close()
			if dynamic {
				return p
			}
		}
	}
	return ""
}
