package fakeissuer_test

import (
	"io"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ambient-code/tokend/test/fakeissuer"
	"github.com/ambient-code/tokend/test/testkit"
)

// TestSlowBodySendsTheWholeBodyEachTime: a SlowBody fault serves every
// request the whole body, at its pace (it once shared what was left of the
// body between requests, so later answers were truncated).
func TestSlowBodySendsTheWholeBodyEachTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const body = `{"token":"abcdefgh"}`
		l := testkit.PipeServer(t, http.HandlerFunc(fakeissuer.SlowBody(body, 8, 100*time.Millisecond)), nil)
		client := testkit.PipeClient(&http.Client{Transport: &http.Transport{}}, l, false)
		defer client.CloseIdleConnections()
		for i := range 2 {
			start := time.Now()
			resp, err := client.Get("http://cp.example.com/token")
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || string(got) != body {
				t.Fatalf("request %d: %q, %v; want the whole body", i, got, err)
			}
			// Three chunks with a pause between each two.
			if took := time.Since(start); i == 0 && took != 200*time.Millisecond {
				t.Errorf("request %d took %v, want 200ms", i, took)
			}
		}
	})
}
