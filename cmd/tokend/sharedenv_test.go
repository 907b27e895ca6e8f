package main

import (
	"strings"
	"testing"
)

// TestInitRefusesATypoInTheSidecarsSettings: an init container and its
// sidecar share one environment, so init stops the pod (status 2, before
// any request) at a malformed setting that only run reads.
func TestInitRefusesATypoInTheSidecarsSettings(t *testing.T) {
	h := newHarness(t)
	h.env["TOKEND_REFRESH_INTERVAL"] = "soon"
	err := h.run(t.Context(), "init")
	if code := exitOf(err); code != 2 {
		t.Fatalf("init exit %d with TOKEND_REFRESH_INTERVAL=soon, want 2 (err %v)", code, err)
	}
	if msg := err.Error(); !strings.Contains(msg, "TOKEND_REFRESH_INTERVAL") || !strings.Contains(msg, "such as 30s") {
		t.Errorf("error does not name the setting and the fix: %v", msg)
	}
	if n := h.iss.Requests(); n != 0 {
		t.Errorf("init sent %d requests with an invalid configuration", n)
	}
	if h.token() != "" {
		t.Error("init wrote a token with an invalid configuration")
	}
}
