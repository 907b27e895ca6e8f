package manifests

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestReadmeDirectoryTable keeps README.md's directory table whole: one
// block of rows, with no blank line or text inside it, and exactly one row
// for the base, each overlay and each Component.
func TestReadmeDirectoryTable(t *testing.T) {
	data, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	head := slices.Index(lines, "| directory | what it renders | use it when |")
	if head < 0 {
		t.Fatal("README.md has no directory table")
	}
	rows := make(map[string]int)
	end := head + 2
	for ; end < len(lines) && strings.HasPrefix(lines[end], "|"); end++ {
		cell, _, _ := strings.Cut(strings.TrimPrefix(lines[end], "| "), " |")
		rows[strings.Trim(cell, "`")]++
	}
	var want []string
	for _, glob := range []string{"base", "overlays/*", "components/*"} {
		dirs, err := filepath.Glob(glob)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range dirs {
			if fi, err := os.Stat(d); err == nil && fi.IsDir() && d != "components/examples" {
				want = append(want, d)
			}
		}
	}
	for _, d := range want {
		if rows[d] != 1 {
			t.Errorf("%s: %d rows in the table (lines %d to %d), want 1", d, rows[d], head+1, end)
		}
		delete(rows, d)
	}
	for d := range rows {
		t.Errorf("table row %q names no directory", d)
	}
	for i, l := range lines[end:] {
		if strings.HasPrefix(l, "| `") && slices.ContainsFunc(want, func(d string) bool { return strings.HasPrefix(l, "| `"+d+"`") }) {
			t.Errorf("line %d: a directory row outside the table: %s", end+i+1, l)
		}
	}
}
