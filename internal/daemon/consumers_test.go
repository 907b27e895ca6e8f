package daemon_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	neturl "net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ambient-code/tokend/internal/child"
	"github.com/ambient-code/tokend/internal/daemon"
	"github.com/ambient-code/tokend/internal/exchange"
	"github.com/ambient-code/tokend/internal/refreshsock"
	"github.com/ambient-code/tokend/internal/secret"
	"github.com/ambient-code/tokend/test/fakeissuer"
	"github.com/ambient-code/tokend/test/testkit"
	"github.com/ambient-code/tokend/test/testkit/daemonevents"
)

// encryptedWorld is a fake control plane that mints a new token per
// exchange, and the configuration of a tokend using it (no health
// server); dir holds the token.
func encryptedWorld(tb testing.TB) (*daemon.Config, string) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewServer(&fakeissuer.Issuer{Key: key, CacheFloor: -1})
	tb.Cleanup(srv.Close)
	dir := tb.TempDir()
	return testConfig(srv.URL+"/token", &key.PublicKey, "consumer-session-0001", filepath.Join(dir, "token")), dir
}

// testConfig is the configuration of an encrypted-session tokend run
// exchanging at url with the command line's defaults, but no health
// server.
func testConfig(url string, key *rsa.PublicKey, sessionID, tokenFile string) *daemon.Config {
	u, err := neturl.Parse(url)
	if err != nil {
		panic(err)
	}
	return &daemon.Config{
		Command:   "run",
		Auth:      "encrypted-session",
		TokenURL:  u,
		Exchanger: &exchange.EncryptedSession{Endpoint: exchange.Endpoint{URL: url, Client: exchange.NewHTTPClient(nil)}, PublicKey: key, SessionID: secret.New(sessionID)},

		RefreshInterval: 5 * time.Minute,
		InitTimeout:     time.Minute,
		MaxBackoff:      30 * time.Second,
		TokenFile:       tokenFile,
		FileMode:        0o640,
		Consumers:       daemon.Consumers{OnChangeTimeout: 30 * time.Second},
		Exec: daemon.ExecConfig{TokenFileEnv: "TOKEND_TOKEN_FILE", Policy: child.PolicyNone,
			ReloadSignal: syscall.SIGHUP, StopSignal: syscall.SIGTERM, Grace: 10 * time.Second},
		SecretEnv: []string{"AMBIENT_CP_TOKEN_PUBLIC_KEY", "SESSION_ID", "TOKEND_CREDENTIAL"},
	}
}

// onChangeEnv makes the test binary the --on-change program: it appends
// the fingerprint of the token file to the file named in the variable,
// then sends SIGUSR1 to the pid in TOKEND_TEST_PARENT.
const onChangeEnv = "TOKEND_DAEMON_TEST_ON_CHANGE"

// relayEnv makes the test binary the consumer named in the pid file (not
// the test itself: tokend refuses its own pid): it prints "ready" once it
// handles SIGUSR2, then passes one SIGUSR2 on to TOKEND_TEST_PARENT.
const relayEnv = "DAEMON_TEST_RELAY"

func init() {
	if os.Getenv(relayEnv) != "" {
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGUSR2)
		fmt.Println("ready")
		<-sigs
		parent, _ := strconv.Atoi(os.Getenv("TOKEND_TEST_PARENT"))
		syscall.Kill(parent, syscall.SIGUSR2)
		os.Exit(0)
	}
	out := os.Getenv(onChangeEnv)
	if out == "" {
		return
	}
	data, _ := os.ReadFile(os.Getenv("TOKEND_TOKEN_FILE"))
	f, err := os.OpenFile(out, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		os.Exit(2)
	}
	fmt.Fprintln(f, secret.Fingerprint(string(data)))
	f.Close()
	parent, _ := strconv.Atoi(os.Getenv("TOKEND_TEST_PARENT"))
	syscall.Kill(parent, syscall.SIGUSR1)
	os.Exit(0)
}

// startRelay starts the relay consumer (relayEnv) once it handles SIGUSR2
// and writes its pid to pidFile; TOKEND_TEST_PARENT must be set.
func startRelay(t *testing.T, pidFile string) {
	t.Helper()
	relay := exec.Command(os.Args[0])
	relay.Env = append(os.Environ(), relayEnv+"=1")
	stdout, err := relay.StdoutPipe()
	if err != nil || relay.Start() != nil {
		t.Fatalf("starting the consumer: %v", err)
	}
	t.Cleanup(func() { relay.Process.Kill(); relay.Wait() })
	if line, _ := bufio.NewReader(stdout).ReadString('\n'); line != "ready\n" {
		t.Fatalf("consumer printed %q", line)
	}
	os.WriteFile(pidFile, []byte(strconv.Itoa(relay.Process.Pid)), 0o600)
}

// TestRunNotifiesOnARequestedRefresh: a refresh request through the socket
// changes the token; the signal notifier (SIGUSR2 to the pid in the pid
// file, a consumer that relays it to this test) and the --on-change
// program (which reports SIGUSR1) both run, once, and the metric counts
// them.
func TestRunNotifiesOnARequestedRefresh(t *testing.T) {
	cfg, dir := encryptedWorld(t)
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGUSR1, syscall.SIGUSR2)
	defer signal.Stop(sigs)
	pidFile, out, sock := filepath.Join(dir, "app.pid"), filepath.Join(t.TempDir(), "calls"), filepath.Join(dir, ".tokend.sock")
	t.Setenv("TOKEND_TEST_PARENT", strconv.Itoa(os.Getpid()))
	startRelay(t, pidFile)
	t.Setenv(onChangeEnv, out)
	cfg.HealthAddr = "127.0.0.1:0"
	cfg.Consumers.NotifySignal, cfg.Consumers.NotifyPIDFile = syscall.SIGUSR2, pidFile
	cfg.Consumers.OnChange, cfg.Consumers.RefreshSocket = []string{os.Args[0]}, sock
	log := &events{ch: make(chan string, 256)}
	addr := make(chan net.Addr, 1)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- daemon.Run(ctx, cfg, daemonevents.Observe(daemon.Deps{Logger: slog.New(log)}, func(e daemonevents.Event) {
			if e.Kind == daemonevents.HealthListening {
				addr <- e.Addr
			}
		}))
	}()
	await(t, log.ch, "the first token", func(l string) bool {
		return strings.HasPrefix(l, "token refreshed") || strings.HasPrefix(l, "token stored") || strings.Contains(l, "fingerprint=")
	})
	resp, err := refreshsock.Request(t.Context(), sock)
	if err != nil || !resp.Changed {
		t.Fatalf("refresh: %+v, %v", resp, err)
	}
	got := map[os.Signal]int{}
	for len(got) < 2 {
		got[testkit.Await(t, "the notifications' signals", sigs)]++
	}
	for range 2 {
		await(t, log.ch, "both notifications counted", func(l string) bool { return strings.HasPrefix(l, "token change notified") })
	}
	data, _ := os.ReadFile(out)
	if string(data) != resp.Fingerprint+"\n" {
		t.Errorf("--on-change saw %q, want the refreshed token %s once", data, resp.Fingerprint)
	}
	metrics := get(t, "http://"+(<-addr).String()+"/metrics")
	for _, want := range []string{`tokend_notifications_total{notifier="command",result="success"} 1`, `tokend_notifications_total{notifier="signal",result="success"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(sock); err == nil {
		t.Error("socket left after Run returned")
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// events is a slog.Handler that keeps every line, for the leak check, and
// sends each message with its error attribute to a channel.
type events struct {
	mu  sync.Mutex
	buf bytes.Buffer
	ch  chan string
}

func (e *events) Enabled(context.Context, slog.Level) bool { return true }
func (e *events) WithAttrs([]slog.Attr) slog.Handler       { return e }
func (e *events) WithGroup(string) slog.Handler            { return e }
func (e *events) Handle(_ context.Context, r slog.Record) error {
	line := r.Message
	r.Attrs(func(a slog.Attr) bool {
		line += fmt.Sprintf(" %s=%v", a.Key, a.Value)
		return true
	})
	e.mu.Lock()
	e.buf.WriteString(line + "\n")
	e.mu.Unlock()
	select {
	case e.ch <- line:
	default:
	}
	return nil
}

func (e *events) String() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.buf.String()
}

// await reads ch until ok accepts a value, failing after testkit.Patience.
func await(t *testing.T, ch <-chan string, what string, ok func(string) bool) {
	t.Helper()
	timeout := time.After(testkit.Patience)
	for {
		select {
		case v := <-ch:
			if ok(v) {
				return
			}
		case <-timeout:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
