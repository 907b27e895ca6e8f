// Package readme tests the README and docs/ as a newcomer uses them: every
// code block of the README that is a program or a shell command is run (or
// named with the test that runs it), and every link and repository path
// the pages mention exists.
package readme

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// root is the repository, from this package's directory.
var root = filepath.Join("..", "..")

// block is one fenced code block of a Markdown file.
type block struct {
	lang string
	line int // of the opening fence, 1-based
	code string
}

// blocks returns the fenced code blocks of the Markdown file at path,
// relative to the repository.
func blocks(t *testing.T, path string) []block {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, path))
	if err != nil {
		t.Fatal(err)
	}
	var out []block
	var cur *block
	var code []string
	for i, l := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(l)
		switch {
		case cur == nil && strings.HasPrefix(trimmed, "```"):
			cur = &block{lang: strings.TrimPrefix(trimmed, "```"), line: i + 1}
			code = nil
		case cur != nil && trimmed == "```":
			cur.code = strings.Join(code, "\n") + "\n"
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			code = append(code, l)
		}
	}
	if cur != nil {
		t.Fatalf("%s:%d: a code block is never closed", path, cur.line)
	}
	return out
}

// runnable reports whether a block of this language is a program or shell
// commands, which the README promises to run.
func runnable(lang string) bool {
	switch lang {
	case "sh", "bash", "shell", "console", "go", "python", "py":
		return true
	}
	return false
}

// readmeRunners say, for each runnable README block, how it is run. A
// block is matched by a line it contains.
var readmeRunners = []struct {
	name, marker string
	run          func(t *testing.T, code string)
}{
	{"two commands", "scripts/local-run.sh   #", checkTwoCommands},
	{"Go program", "func run(url string) error", runGoProgram},
	{"shell reader", "token() { #", runByTokenfile("sh", "token() {")},
	{"Python reader", "def token(", runByTokenfile("python", "def token(")},
	{"curl line", "tok=$(token /var/run/ambient/token) && curl", runCurlLine},
}

// TestReadmeBlocksAreRun runs every README block that is a program or a
// shell command, and fails for one that no runner knows: a new block
// needs a runner here.
func TestReadmeBlocksAreRun(t *testing.T) {
	used := map[string]bool{}
	for _, b := range blocks(t, "README.md") {
		if !runnable(b.lang) {
			continue
		}
		found := false
		for _, r := range readmeRunners {
			if !strings.Contains(b.code, r.marker) {
				continue
			}
			found, used[r.marker] = true, true
			t.Run(r.name, func(t *testing.T) { r.run(t, b.code) })
			break
		}
		if !found {
			t.Errorf("README.md:%d: a %s block that no test runs; add a runner to readmeRunners:\n%s", b.line, b.lang, b.code)
		}
	}
	for _, r := range readmeRunners {
		if !used[r.marker] {
			t.Errorf("README.md has no block with %q any more; remove its runner", r.marker)
		}
	}
}

// checkTwoCommands checks the two set-up commands: each line runs a script
// of the repository, executable, that CI runs too (.ci/run runs both; the
// local run is also run by test/localrun, the suite is this test's own).
func checkTwoCommands(t *testing.T, code string) {
	ci, err := os.ReadFile(filepath.Join(root, ".ci", "run"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range strings.Split(strings.TrimSpace(code), "\n") {
		cmd, _, _ := strings.Cut(l, "#")
		cmd = strings.TrimSpace(cmd)
		fi, err := os.Stat(filepath.Join(root, cmd))
		if err != nil || fi.Mode()&0o111 == 0 {
			t.Errorf("%q: not an executable script of the repository (%v)", cmd, err)
		}
		if !strings.Contains(string(ci), cmd) {
			t.Errorf("%q: .ci/run does not run it", cmd)
		}
		n++
	}
	if n != 2 {
		t.Errorf("%d commands, want the two", n)
	}
}

// runByTokenfile checks that tokenfile's TestReadmeReaders, which runs the
// README's shell and Python readers against tokenfile's own rule, still
// looks for this block.
func runByTokenfile(lang, marker string) func(*testing.T, string) {
	return func(t *testing.T, code string) {
		b, err := os.ReadFile(filepath.Join(root, "tokenfile", "readme_test.go"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), `{"`+lang+`", "`+marker+`"`) {
			t.Errorf("tokenfile.TestReadmeReaders no longer runs the %s block defining %q", lang, marker)
		}
	}
}
