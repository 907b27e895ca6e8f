package secret

import (
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"
)

const panicValue = "s3cret-panic-value"

func init() {
	switch os.Getenv("SECRET_TEST_PANIC") {
	case "value":
		panic(New(panicValue))
	case "error":
		panic(fmt.Errorf("wrapped: %v %s %q %+v %#v", New(panicValue), New(panicValue), New(panicValue), New(panicValue), New(panicValue)))
	case "struct":
		panic(struct{ Token String }{New(panicValue)})
	}
}

// TestPanicsAreRedacted: a String that reaches a panic, directly, through
// fmt, or inside a struct, prints redacted in the crash output.
func TestPanicsAreRedacted(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"value", "error", "struct"} {
		cmd := exec.Command(self, "-test.run=^$")
		cmd.Env = append(os.Environ(), "SECRET_TEST_PANIC="+mode)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "panic") {
			t.Fatalf("%s: the child did not panic: %v", mode, err)
		}
		if strings.Contains(string(out), panicValue) {
			t.Errorf("%s: the panic output holds the secret", mode)
		}
	}
}

// TestLogsAreRedacted: slog's handlers print a String redacted, as an
// attribute or inside a group.
func TestLogsAreRedacted(t *testing.T) {
	var b strings.Builder
	for _, h := range []slog.Handler{slog.NewTextHandler(&b, nil), slog.NewJSONHandler(&b, nil)} {
		slog.New(h).Info("m", "token", New(panicValue), slog.Group("g", "v", New(panicValue)), "any", any(New(panicValue)))
	}
	if strings.Contains(b.String(), panicValue) {
		t.Fatalf("a log line holds the secret:\n%s", b.String())
	}
}
