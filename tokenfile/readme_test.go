package tokenfile

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadmeReaders runs the shell and Python readers of the README's
// "Reading the token" section against the same files as parseToken, and
// checks that they accept and refuse exactly what the package does: one
// rule for what a token file may hold.
func TestReadmeReaders(t *testing.T) {
	blocks := readmeBlocks(t, "## Reading the token")
	readers := []struct {
		lang, marker string
		// cmd runs the reader on each file, printing a line per file:
		// "ok <token>" or "refused".
		cmd func(block string, files []string) *exec.Cmd
	}{
		{"sh", "token() {", func(block string, files []string) *exec.Cmd {
			script := block + "\nfor f; do if t=$(token \"$f\" 2>/dev/null); then echo \"ok $t\"; else echo refused; fi; done"
			return exec.Command("sh", append([]string{"-c", script, "sh"}, files...)...)
		}},
		{"python", "def token(", func(block string, files []string) *exec.Cmd {
			script := block + "\nimport sys\nfor f in sys.argv[1:]:\n" +
				"    try: print('ok', token(f))\n    except ValueError: print('refused')"
			return exec.Command("python3", append([]string{"-c", script}, files...)...)
		}},
	}
	contents := []string{
		"abc.DEF-123_~+/=", "abc\n", "abc\n\n", "", "\n", "\n\n", "abc\r\n", " abc", "abc ",
		"ab c", "ab\tc", "ab\nc", "ab\x00c", "ab\x7fc", "abé", "\xff\xfe", "-[!*?]\\",
		strings.Repeat("a", MaxTokenLen), strings.Repeat("a", MaxTokenLen+1),
		strings.Repeat("a", MaxTokenLen-1) + "\n", strings.Repeat("a", MaxTokenLen) + "\n",
	}
	dir := t.TempDir()
	var files, want []string
	for i, content := range contents {
		files = append(files, filepath.Join(dir, fmt.Sprint(i)))
		must(t, os.WriteFile(files[i], []byte(content), 0o600))
		tok, err := parseToken([]byte(content))
		if err != nil {
			tok = "refused"
		} else {
			tok = "ok " + tok
		}
		want = append(want, tok)
	}
	for _, r := range readers {
		block := findBlock(blocks[r.lang], r.marker)
		if block == "" {
			t.Errorf("README: no %s block defining %q under \"Reading the token\"", r.lang, r.marker)
			continue
		}
		cmd := r.cmd(block, files)
		if _, err := exec.LookPath(cmd.Path); err != nil {
			t.Logf("%s: %v; not checked", r.lang, err)
			continue
		}
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s reader: %v", r.lang, err)
		}
		got := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
		for i := range want {
			if i >= len(got) || got[i] != want[i] {
				t.Errorf("%s reader, file %d (%d bytes): %.40q; tokenfile: %.40q", r.lang, i, len(contents[i]), at(got, i), want[i])
			}
		}
	}
}

func at(s []string, i int) string {
	if i < len(s) {
		return s[i]
	}
	return "(nothing)"
}

// readmeBlocks returns the fenced code blocks of the README section that
// starts with heading, by language.
func readmeBlocks(t *testing.T, heading string) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "README.md"))
	must(t, err)
	_, section, ok := strings.Cut(string(b), "\n"+heading+"\n")
	if !ok {
		t.Fatalf("README: no section %q", heading)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	blocks := map[string][]string{}
	for {
		_, rest, ok := strings.Cut(section, "\n```")
		if !ok {
			return blocks
		}
		lang, rest, _ := strings.Cut(rest, "\n")
		code, rest, _ := strings.Cut(rest, "\n```")
		blocks[lang] = append(blocks[lang], code)
		section = rest
	}
}

func findBlock(blocks []string, marker string) string {
	for _, b := range blocks {
		if strings.Contains(b, marker) {
			return b
		}
	}
	return ""
}
