package exchange_test

import (
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ambient-code/tokend/internal/exchange"
	"github.com/ambient-code/tokend/test/ostest"
)

// TestUnknownAuthorityNamesTheCASettings: in both modes, a server whose
// certificate no trusted CA signed gets an error that names the settings
// adding a CA, and stays permanent.
func TestUnknownAuthorityNamesTheCASettings(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	session := newSession(t, srv.URL)
	f := newSAFixture(t)
	f.rotate(t)
	sa := *f.ex
	sa.URL = srv.URL + "/token"
	sa.Client = exchange.NewHTTPClient(nil)
	sa.Timeout = time.Second
	for name, ex := range map[string]exchange.Exchanger{"encrypted-session": session, "service-account": &sa} {
		t.Run(name, func(t *testing.T) {
			_, err := ex.Exchange(t.Context())
			for _, want := range []string{"certificate signed by unknown authority", "--cp-ca-file (AMBIENT_CP_CA_PATH)", "--ca-file (TOKEND_CA_FILE)"} {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("err = %v, want it to say %q", err, want)
				}
			}
			if exchange.Retryable(err) {
				t.Error("an unknown authority is retryable; the trusted roots do not change")
			}
		})
	}
}

// TestUnreadableServiceAccountTokenIsNotBlamedOnTheKubelet: a token file
// that exists but that tokend's user may not read says so, with who tokend
// runs as and who owns the file, and sends nothing.
func TestUnreadableServiceAccountTokenIsNotBlamedOnTheKubelet(t *testing.T) {
	f := newSAFixture(t)
	f.rotate(t)
	dir := filepath.Dir(f.path)
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(f.path, 0); err != nil {
		t.Fatal(err)
	}
	var uid int
	err := ostest.AsNonRoot(t, func() error {
		uid = os.Getuid()
		_, err := f.ex.Exchange(t.Context())
		return err
	})
	if !errors.Is(err, exchange.ErrIdentity) {
		t.Fatalf("err = %v, want ErrIdentity", err)
	}
	for _, want := range []string{f.path + " exists but tokend may not read it", "permission denied",
		fmt.Sprintf("tokend runs as uid %d", uid), "with mode 0000", "securityContext.fsGroup"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "kubelet may not have projected") {
		t.Errorf("error blames the kubelet for a file that is there:\n%v", err)
	}
	if n := len(f.rec.requests()); n != 0 {
		t.Errorf("%d requests sent without a ServiceAccount token", n)
	}
}
