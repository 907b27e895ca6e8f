package readme

import (
	"bytes"
	"fmt"
	"go/format"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ambient-code/tokend/test/fakeissuer"
	"github.com/ambient-code/tokend/test/testkit"
)

// api is a stand-in for the platform API: it answers "hello" to a request
// whose Authorization is "Bearer " and the token want returns, and 401 to
// any other.
type api struct {
	*httptest.Server
	ok, refused atomic.Int64
}

func newAPI(t *testing.T, want func() string) *api {
	a := &api{}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tok := want(); tok == "" || r.Header.Get("Authorization") != "Bearer "+tok {
			a.refused.Add(1)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		a.ok.Add(1)
		fmt.Fprint(w, "hello")
	}))
	t.Cleanup(a.Close)
	return a
}

// build runs go build in the repository with args, failing t with its
// output.
func build(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command("go", append([]string{"build"}, args...)...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// runGoProgram compiles the README's Go program as pasted and runs it
// against the real tokend, which exchanges with a stand-in control plane:
// the program, started before the token file exists, waits for tokend's
// first token and calls the API with it.
func runGoProgram(t *testing.T, code string) {
	if formatted, err := format.Source([]byte(code)); err != nil || string(formatted) != code {
		t.Errorf("the program is not as gofmt formats it (%v):\n%s", err, formatted)
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "main.go")
	if err := os.WriteFile(src, []byte(code), 0o644); err != nil {
		t.Fatal(err)
	}
	build(t, "-o", filepath.Join(dir, "program"), src)
	tokendBin := tokendBinary(t)

	iss := &fakeissuer.Issuer{Key: testkit.RSAKey()}
	cp := httptest.NewServer(iss)
	t.Cleanup(cp.Close)
	a := newAPI(t, iss.Current)
	tokenFile := filepath.Join(dir, "token")

	var progOut, progErr testkit.Buffer
	prog := exec.Command(filepath.Join(dir, "program"), a.URL+"/v1/sessions")
	prog.Env = []string{"TOKEND_TOKEN_FILE=" + tokenFile}
	prog.Stdout, prog.Stderr = &progOut, &progErr
	if err := prog.Start(); err != nil {
		t.Fatal(err)
	}
	progDone := make(chan error, 1)
	go func() { progDone <- prog.Wait() }()
	t.Cleanup(func() { _ = prog.Process.Kill() })

	var tokendLog testkit.Buffer
	tokend := exec.Command(tokendBin, "run")
	tokend.Env = []string{
		"AMBIENT_CP_TOKEN_URL=" + cp.URL + "/token",
		"AMBIENT_CP_TOKEN_PUBLIC_KEY=" + testkit.PublicKeyPEM(),
		"SESSION_ID=readme-session-0001",
		"TOKEND_TOKEN_FILE=" + tokenFile,
		"TOKEND_HEALTH_ADDR=",
	}
	tokend.Stdout, tokend.Stderr = &tokendLog, &tokendLog
	if err := tokend.Start(); err != nil {
		t.Fatal(err)
	}
	tokendDone := make(chan error, 1)
	go func() { tokendDone <- tokend.Wait() }()
	defer func() {
		_ = tokend.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-tokendDone:
			if err != nil {
				t.Errorf("tokend run: %v\n%s", err, tokendLog.String())
			}
		case <-time.After(testkit.Patience):
			_ = tokend.Process.Kill()
			t.Errorf("tokend run did not stop on SIGTERM\n%s", tokendLog.String())
		}
	}()

	select {
	case err := <-progDone:
		if err != nil {
			t.Fatalf("the program: %v\nstderr: %s\ntokend: %s", err, progErr.String(), tokendLog.String())
		}
	case err := <-tokendDone:
		t.Fatalf("tokend run ended (%v) before the program\n%s", err, tokendLog.String())
	case <-time.After(testkit.Patience):
		t.Fatalf("the program did not end\nstderr: %s\ntokend: %s", progErr.String(), tokendLog.String())
	}
	if got := progOut.String(); got != "200 OK, 5 bytes\n" {
		t.Errorf("the program printed %q, want %q\nstderr: %s", got, "200 OK, 5 bytes\n", progErr.String())
	}
	if a.ok.Load() != 1 || a.refused.Load() != 0 {
		t.Errorf("the API saw %d requests with the issuer's token and %d without", a.ok.Load(), a.refused.Load())
	}
}

// runCurlLine runs the README's curl line with its shell reader, on a
// token file and on a file that is not one: the first calls the API with
// the token, the second never calls it.
func runCurlLine(t *testing.T, code string) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skipf("curl: %v", err)
	}
	var reader string
	for _, b := range blocks(t, "README.md") {
		if strings.Contains(b.code, "token() { #") {
			reader = b.code
		}
	}
	const tok = "eyJhbGciOiJub25lIn0.e30.sig-_~"
	a := newAPI(t, func() string { return tok })
	dir := t.TempDir()
	for _, tt := range []struct {
		name, content string
		ok            bool
	}{
		{"token file", tok + "\n", true},
		{"not a token file", "two words\n", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-"))
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			before := a.ok.Load() + a.refused.Load()
			script := reader + strings.ReplaceAll(code, "/var/run/ambient/token", path)
			cmd := exec.Command("sh", "-c", script)
			cmd.Env = append(os.Environ(), "API_URL="+a.URL+"/v1/sessions")
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			calls := a.ok.Load() + a.refused.Load() - before
			switch {
			case tt.ok && (err != nil || stdout.String() != "hello" || calls != 1):
				t.Errorf("%v, printed %q, %d API calls; want hello from one call\n%s", err, stdout.String(), calls, stderr.String())
			case !tt.ok && (err == nil || calls != 0 || !strings.Contains(stderr.String(), "not a token file")):
				t.Errorf("%v, %d API calls, stderr %q; want a failure that calls nothing and says why", err, calls, stderr.String())
			}
		})
	}
}
