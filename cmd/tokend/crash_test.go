package main

import (
	"math/rand/v2"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// long reports whether the long runs were asked for (TOKEND_LONG=1), for
// the figures in the hardening note; CI runs the short ones.
func long() bool { return os.Getenv("TOKEND_LONG") != "" }

// TestProcessSurvivesSIGKILL kills `tokend run` with SIGKILL at random
// moments while it rotates (every start mints a new token, and the file
// is replaced), many times over. After every kill the token file must be
// absent (before the first write ever) or a whole token that the issuer
// signed, with its mode, and `tokend check` must accept it. A last clean
// start must leave no temporary file behind.
func TestProcessSurvivesSIGKILL(t *testing.T) {
	t.Parallel() // mostly waiting; overlaps the other slow test
	kills := 100
	if long() {
		kills = 1000
	}
	h := newRotatingHarness(t)
	h.env["TOKEND_REFRESH_INTERVAL"] = "100ms" // the refresher's 500 ms floor
	h.env["LOG_LEVEL"] = "info"

	// Calibrate: how long a start takes to write its first token. This
	// only spreads the kills below; nothing is judged by it.
	p := start(t, h, "run")
	began := time.Now()
	p.stderr.WaitForText(t, "token updated", p.exited)
	firstWrite := time.Since(began)
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.exit(t)

	var midWrite, unchanged, maxTemps int
	tokens, seenTemp := map[string]bool{}, map[string]bool{}
	for i := range kills {
		before := h.token()
		// Most kills land around the first write, some before it, and one
		// in twenty later, in the middle of the rotations.
		from, window := firstWrite/2, firstWrite
		switch {
		case i%20 == 19:
			from, window = 0, 1500*time.Millisecond
		case i%4 == 0:
			from = 0
		}
		p := start(t, h, "run")
		// A random moment for the kill; nothing is timed. A process that
		// exits by itself before it fails the test.
		moment := time.NewTimer(from + rand.N(window))
		select {
		case <-moment.C:
		case <-p.exited:
			t.Fatalf("kill %d: tokend exited by itself (%v)\n%s", i, p.err, p.stderr.String())
		}
		moment.Stop()
		p.cmd.Process.Kill()
		<-p.exited
		if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
			t.Fatalf("kill %d: tokend exited by itself (%v)\n%s", i, p.err, p.stderr.String())
		}

		got, err := os.ReadFile(h.file)
		switch {
		case os.IsNotExist(err) && before == "":
		case err != nil:
			t.Fatalf("kill %d: token file: %v", i, err)
		case !validJWT(string(got)):
			t.Fatalf("kill %d: token file holds %d bytes that are not a whole issued token", i, len(got))
		}
		if fi, err := os.Stat(h.file); err == nil && fi.Mode().Perm() != 0o640 {
			t.Fatalf("kill %d: token file mode %v", i, fi.Mode().Perm())
		}
		if string(got) == before {
			unchanged++
		}
		tokens[string(got)] = true
		temps := tempFiles(t, h.dir)
		for _, f := range temps {
			if !seenTemp[f] {
				seenTemp[f] = true
				midWrite++
				break
			}
		}
		maxTemps = max(maxTemps, len(temps))
		if len(got) > 0 {
			if err := h.run(t.Context(), "check"); err != nil {
				t.Fatalf("kill %d: check refuses the token file: %v", i, err)
			}
		}
	}

	// A clean start after all that: it writes a new token and its status
	// record, stops on SIGTERM, and leaves no temporary file.
	last := h.token()
	p = start(t, h, "run")
	p.stderr.WaitForText(t, "token updated", p.exited)
	if h.token() == last {
		t.Fatalf("the clean start logged a new token, but the file holds the old one")
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.exit(t); code != 0 {
		t.Fatalf("clean run exited %d\n%s", code, p.stderr.String())
	}
	if left := tempFiles(t, h.dir); len(left) > 0 {
		t.Errorf("temporary files left after a clean start: %v", left)
	}
	t.Logf("%d SIGKILLs (first write %v after start): %d left a temporary file (killed mid-write; at most %d at once), %d before the process wrote, %d distinct tokens seen",
		kills, firstWrite.Round(time.Millisecond), midWrite, maxTemps, unchanged, len(tokens))
	h.stderr.Write([]byte(p.stderr.String()))
	var all []string
	for tok := range tokens {
		all = append(all, tok)
	}
	h.assertNoSecrets(all...)
}

// tempFiles lists the temporary files of tokend's atomic writes in dir.
func tempFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tokend-tmp-") {
			out = append(out, e.Name())
		}
	}
	return out
}
