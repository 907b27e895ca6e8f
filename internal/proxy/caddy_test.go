package proxy

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// startCaddy runs Caddy's reverse_proxy to upstream (host:port) in a
// process of its own, as the peer BenchmarkThroughput64 compares with,
// and returns once Caddy says it serves. ok is false when no caddy is on
// PATH (Debian packages it: apt-get install caddy). Caddy takes no port
// 0, so its port is one the kernel just handed out and released; its
// admin endpoint, which would bind a fixed port, is off.
func startCaddy(b *testing.B, upstream string) (c child, ok bool) {
	bin, err := exec.LookPath("caddy")
	if err != nil {
		return child{}, false
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dir := b.TempDir()
	conf := "{\n\tadmin off\n\tauto_https off\n}\nhttp://" + addr + " {\n\treverse_proxy " + upstream + "\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "Caddyfile"), []byte(conf), 0o600); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--config", "Caddyfile", "--adapter", "caddyfile")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cmd.Process.Signal(os.Interrupt); _ = cmd.Wait() })
	s := bufio.NewScanner(stderr)
	var said []string
	for s.Scan() {
		if strings.Contains(s.Text(), "serving initial configuration") {
			go func() { // keep reading, so that Caddy never blocks on its log
				for s.Scan() {
				}
			}()
			return child{addr: addr, pid: cmd.Process.Pid}, true
		}
		said = append(said, s.Text())
	}
	b.Fatalf("caddy ended before serving:\n%s", strings.Join(said, "\n"))
	return child{}, false
}
