package manifests

import (
	"net"
	"net/url"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// checkProxy: only proxy layouts run the credential proxy. There, `tokend
// run` listens on a loopback address and forwards to an https upstream,
// and every consumer's AMBIENT_API_SERVER_URL is that loopback address, so
// its requests carry the token without the consumer ever holding it.
func checkProxy(t *testing.T, w workload) {
	var listen string
	for _, c := range w.containers() {
		l, has := env(c, "TOKEND_PROXY_LISTEN")
		switch {
		case has && (!w.proxy || !isRun(c)):
			t.Errorf("%s: TOKEND_PROXY_LISTEN outside a proxy layout's `tokend run`", c.Name)
		case has:
			listen = l.Value
			checkProxyTokend(t, c, l.Value)
		}
	}
	if !w.proxy {
		return
	}
	if listen == "" {
		t.Fatal("no `tokend run` container sets TOKEND_PROXY_LISTEN")
	}
	var consumers int
	for _, c := range w.containers() {
		if isTokend(c) {
			continue
		}
		consumers++
		if e, _ := env(c, "AMBIENT_API_SERVER_URL"); e.Value != "http://"+listen {
			t.Errorf("%s: AMBIENT_API_SERVER_URL = %q, want the proxy, http://%s", c.Name, e.Value, listen)
		}
	}
	if consumers == 0 {
		t.Error("no consumer uses the proxy")
	}
}

// checkProxyTokend: the proxy listens on loopback and forwards over https.
func checkProxyTokend(t *testing.T, c *corev1.Container, listen string) {
	up, _ := env(c, "AMBIENT_API_SERVER_URL")
	checkProxyListen(t, c.Name, listen)
	checkProxyUpstream(t, c.Name, up.Value)
}

// checkProxyListen: TOKEND_PROXY_LISTEN is a loopback host:port.
func checkProxyListen(t *testing.T, name, listen string) {
	t.Helper()
	host, _, err := net.SplitHostPort(listen)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		t.Errorf("%s: TOKEND_PROXY_LISTEN %q is not a loopback host:port", name, listen)
	}
}

// checkProxyUpstream: the proxy forwards to an https URL.
func checkProxyUpstream(t *testing.T, name, upstream string) {
	t.Helper()
	if u, err := url.Parse(upstream); err != nil || u.Scheme != "https" || u.Host == "" {
		t.Errorf("%s: AMBIENT_API_SERVER_URL %q, want the API server's https URL", name, upstream)
	}
}
