package tokendir

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ambient-code/tokend/internal/tokenbytes"
)

// TestReadToken: the one reader of the token file applies the token rule:
// a token with trailing line feeds is read without them; a missing,
// empty, non-regular, oversized or malformed file is an error naming the
// file and the problem, never the content; a withdrawal record is reported
// as withdrawn with its reason.
func TestReadToken(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		content string // "" writes nothing; "dir" makes a directory
		want    string // the token, or a part of the error
		is      error
	}{
		{"token", "tok-secret-1\n\n", "tok-secret-1", nil},
		{"missing", "", "no such file", nil},
		{"directory", "dir", "is a directory", ErrNotRegular},
		{"empty", "\n", "is empty", nil},
		{"whitespace", "tok-secret 1", "has a whitespace, control or non-ASCII byte at offset 10", nil},
		{"too long", strings.Repeat("x", tokenbytes.MaxLen+1), "is longer than 16384 bytes", nil},
		{"withdrawn", string(tokenbytes.Withdrawal("session tok-sess refused (403)")), "holds no token: token withdrawn: session tok-sess refused (403)", tokenbytes.ErrWithdrawn},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, tt.name)
			switch tt.content {
			case "":
			case "dir":
				must(t, os.Mkdir(path, 0o755))
			default:
				must(t, os.WriteFile(path, []byte(tt.content), 0o640))
			}
			tok, err := ReadToken(path)
			if tt.name == "token" {
				if err != nil || tok.Reveal() != tt.want {
					t.Fatalf("ReadToken = %v, want the token without its line feeds", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("ReadToken = %v, want an error naming %s and %q", err, path, tt.want)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("ReadToken = %v, want it to wrap %v", err, tt.is)
			}
			if strings.Contains(err.Error(), "tok-secret") || strings.Contains(err.Error(), "xxxx") {
				t.Errorf("the error holds the content: %v", err)
			}
		})
	}
}
