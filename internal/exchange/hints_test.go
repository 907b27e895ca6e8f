package exchange_test

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ambient-code/tokend/internal/exchange"
	"github.com/ambient-code/tokend/internal/secret"
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
	bearer := &exchange.Bearer{Endpoint: exchange.Endpoint{URL: srv.URL + "/token", Client: exchange.NewHTTPClient(nil)}, Credential: secret.New("a-capability")}
	for name, ex := range map[string]exchange.Exchanger{"encrypted-session": session, "bearer": bearer} {
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
