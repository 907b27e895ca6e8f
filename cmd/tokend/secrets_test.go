package main

import (
	"strings"
	"testing"

	"github.com/ambient-code/tokend/test/fakeissuer"
)

// TestErrorsOmitTheURLQuery: the control plane ignores the token URL's
// query string, but a gateway in front of it may take a credential there.
// tokend logs the URL without it at start; its errors must not quote it
// either.
func TestErrorsOmitTheURLQuery(t *testing.T) {
	const query = "sig=s3cret-in-query"
	for _, fault := range []struct {
		name string
		f    fakeissuer.Fault
	}{
		{"transport error", fakeissuer.ResetBeforeAnswer()},
		{"status", fakeissuer.Status(503)},
		{"invalid body", fakeissuer.Body("junk")},
	} {
		t.Run(fault.name, func(t *testing.T) {
			h := newFaultHarness(t)
			h.env["AMBIENT_CP_TOKEN_URL"] += "?" + query
			h.env["TOKEND_INIT_TIMEOUT"] = "500ms"
			h.env["TOKEND_MAX_BACKOFF"] = "100ms"
			h.out.Start(fault.f)
			err := h.run(t.Context(), "init")
			if err == nil {
				t.Fatal("init succeeded")
			}
			if out := h.stderr.String() + err.Error(); strings.Contains(out, "s3cret-in-query") {
				t.Fatalf("the URL's query string is in the output:\n%s", out)
			}
			h.assertClean()
		})
	}
}
