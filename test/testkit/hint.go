package testkit

import (
	"strings"
	"testing"
)

// WantHint fails t unless err is not nil and says every part, and never
// names an internal package ("tokendir:"): errors that reach an operator
// name the setting and the fix, not tokend's layout.
func WantHint(t testing.TB, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("no error")
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error does not say %q:\n%v", p, err)
		}
	}
	if strings.Contains(err.Error(), "tokendir:") {
		t.Errorf("error names an internal package:\n%v", err)
	}
}
