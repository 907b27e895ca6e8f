package readme

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
)

// binDir holds the programs the tests build once for the package.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tokend-readme-")
	if err != nil {
		panic(err)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var buildTokend sync.Once

// tokendBinary builds cmd/tokend once for the package and returns its path.
func tokendBinary(t *testing.T) string {
	t.Helper()
	path := filepath.Join(binDir, "tokend")
	buildTokend.Do(func() { build(t, "-o", path, "./cmd/tokend") })
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("tokend was not built: %v", err)
	}
	return path
}

var (
	helpFlag = regexp.MustCompile(`(?m)^\s+--([a-z-]+)\s.*\[\$([A-Z_]+)\]$`)
	tableRow = regexp.MustCompile("(?m)^\\| (`[^|]*`) \\| (`[^|]*`) \\|")
	backq    = regexp.MustCompile("`([^`]+)`")
)

// TestSettingsTables holds the settings tables of the README and docs/ to
// tokend's own help: each flag a table names is a flag of tokend with the
// variable the row gives it, and every variable tokend reads is named on
// some page.
func TestSettingsTables(t *testing.T) {
	bin := tokendBinary(t)
	envOf := map[string]string{} // flag -> its variable, from every command's help
	var help strings.Builder
	for _, c := range []string{"init", "run", "exec", "check", "refresh"} {
		out, err := exec.Command(bin, c, "-h").CombinedOutput()
		if err != nil {
			t.Fatalf("tokend %s -h: %v\n%s", c, err, out)
		}
		help.Write(out)
		for _, m := range helpFlag.FindAllStringSubmatch(string(out), -1) {
			envOf[m[1]] = m[2]
		}
	}
	if len(envOf) < 20 {
		t.Fatalf("only %d flags found in tokend's help; has its format changed?\n%s", len(envOf), help.String())
	}
	var all strings.Builder
	rows := 0
	for _, page := range pages(t) {
		text := read(t, page)
		all.WriteString(text)
		for _, row := range tableRow.FindAllStringSubmatch(text, -1) {
			envs, flags := names(row[1]), names(row[2])
			if len(flags) == 0 || !strings.HasPrefix(flags[0], "--") {
				continue // not a settings table
			}
			rows++
			for _, f := range flags {
				env, ok := envOf[strings.TrimPrefix(f, "--")]
				switch {
				case !ok:
					t.Errorf("%s: %s is not a flag of tokend", page, f)
				case !slices.Contains(envs, env):
					t.Errorf("%s: the row of %s names %v; tokend reads it from %s", page, f, envs, env)
				}
			}
			for _, e := range envs {
				if !strings.Contains(help.String(), e) {
					t.Errorf("%s: %s is not a variable tokend reads", page, e)
				}
			}
		}
	}
	if rows < 20 {
		t.Errorf("only %d settings rows in the README and docs/", rows)
	}
	for f, env := range envOf {
		if !strings.Contains(all.String(), "`"+env+"`") {
			t.Errorf("%s (--%s) is named on no page of the README or docs/", env, f)
		}
	}
}

func names(cell string) []string {
	var out []string
	for _, m := range backq.FindAllStringSubmatch(cell, -1) {
		out = append(out, m[1])
	}
	return out
}
