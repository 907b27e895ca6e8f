package health

import (
	"os"
	"testing"
	"time"

	"github.com/ambient-code/tokend/internal/exchange"
	"github.com/ambient-code/tokend/internal/secret"
)

// BenchmarkReady measures a /readyz verdict, which takes the token
// directory's last verification. BenchmarkReadyReference is what the
// probe did before: read the token file and fingerprint it. Compare the
// two from one run.
func BenchmarkReady(b *testing.B) {
	m, _ := readyMonitor(b)
	for b.Loop() {
		if err := m.ready(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadyReference(b *testing.B) {
	m, path := readyMonitor(b)
	want := m.current.Load().Fingerprint
	for b.Loop() {
		if err := m.ready(); err != nil {
			b.Fatal(err)
		}
		data, err := os.ReadFile(path)
		if err != nil || secret.Fingerprint(string(data)) != want {
			b.Fatal("token file changed")
		}
	}
}

func readyMonitor(b *testing.B) (*Monitor, string) {
	dir := testDir(b)
	tok := exchange.Token{Value: secret.New("eyJhbGciOiJSUzI1NiJ9.eyJleHAiOjQxMDI0NDQ4MDB9.c2lnbmF0dXJl"), Expiry: time.Now().Add(time.Hour)}
	if _, err := dir.Store(tok); err != nil {
		b.Fatal(err)
	}
	m := New(dir.Verified, nil)
	m.Stored(tok, true)
	return m, dir.TokenFile()
}
