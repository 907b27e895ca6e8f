package exchange

import (
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
)

// proxy is a forward proxy on loopback: it tunnels CONNECT and answers
// every plain request itself, as a hostile or broken proxy would, with a
// token of its own. It records what it saw.
type proxy struct {
	mu   sync.Mutex // guards seen
	seen []string   // "CONNECT host:port" or "GET absolute-URL"
	srv  *httptest.Server
}

func newProxy(t *testing.T) *proxy {
	p := &proxy{}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *proxy) serve(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.seen = append(p.seen, r.Method+" "+r.RequestURI)
	p.mu.Unlock()
	if r.Method != http.MethodConnect {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"token":"token-from-the-proxy"}`)
		return
	}
	up, err := net.Dial("tcp", r.Host)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer up.Close()
	conn, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	io.WriteString(conn, "HTTP/1.1 200 Connection established\r\n\r\n")
	go io.Copy(up, buf)
	io.Copy(conn, up)
}

func (p *proxy) requests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.seen...)
}

// TestProxyOnlyForHTTPS: a proxy from the environment never sees a
// plain-http exchange (it would read the credential and could answer with
// its own token); an https exchange may cross it, as an opaque CONNECT
// tunnel.
func TestProxyOnlyForHTTPS(t *testing.T) {
	issuer := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"token":"token-from-the-issuer"}`)
	})
	plain := httptest.NewServer(issuer)
	defer plain.Close()
	tlsSrv := httptest.NewTLSServer(issuer)
	defer tlsSrv.Close()
	roots := x509.NewCertPool()
	roots.AddCert(tlsSrv.Certificate())

	for _, tt := range []struct {
		name, url string
		want      []string // what the proxy must see
	}{
		{name: "http", url: plain.URL + "/token", want: nil},
		{name: "https", url: tlsSrv.URL + "/token", want: []string{"CONNECT " + tlsSrv.Listener.Addr().String()}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := newProxy(t)
			proxyURL, _ := url.Parse(p.srv.URL)
			fromEnv := func(*http.Request) (*url.URL, error) { return proxyURL, nil }
			c := newHTTPClient(roots, fromEnv)
			defer c.CloseIdleConnections()
			resp, err := c.Get(tt.url)
			if err != nil {
				t.Fatal(cause(err))
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(body) != `{"token":"token-from-the-issuer"}` {
				t.Errorf("answer %q did not come from the issuer", body)
			}
			got := p.requests()
			if len(got) != len(tt.want) || (len(got) > 0 && got[0] != tt.want[0]) {
				t.Errorf("proxy saw %q, want %q", got, tt.want)
			}
		})
	}
}
