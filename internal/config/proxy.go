package config

import (
	"flag"
	"net/url"

	"github.com/ambient-code/tokend/internal/proxy"
)

// Proxy is the credential proxy's configuration (run and exec): off while
// Listen is empty.
type Proxy struct {
	// Listen is a loopback host:port or unix:PATH (proxy.Listen's rules).
	Listen string
	// Upstream is the platform API server the proxy forwards to.
	Upstream *url.URL
}

var (
	proxyListen = &setting{name: "proxy-listen", env: "TOKEND_PROXY_LISTEN",
		usage: "credential proxy address: 127.0.0.1:PORT or unix:PATH; it adds the token to every request and forwards it to --proxy-upstream (empty disables)",
		value: func(c *Config) flag.Value { return stringVar(&c.Proxy.Listen) }}
	proxyUpstream = &setting{name: "proxy-upstream", env: "AMBIENT_API_SERVER_URL",
		usage: "the platform API server the credential proxy forwards to (required with --proxy-listen)"}
	proxySpecs = []*setting{proxyListen, proxyUpstream}
)

// buildProxy reads proxySpecs. The upstream follows the token URL's rule
// for plain http: the proxy sends the token there.
func (c *Config) buildProxy(p *problems) {
	raw := c.get(proxyUpstream)
	if c.Proxy.Listen == "" {
		return
	}
	if raw == "" {
		p.add(proxyUpstream, "required with --proxy-listen: set it to the platform API server's URL, e.g. https://ambient-api-server.<ns>.svc:8443")
		return
	}
	u, err := proxy.ParseUpstream(raw)
	if err != nil {
		p.add(proxyUpstream, "%v", err)
		return
	}
	if u.Scheme == "http" && !c.AllowInsecureHTTP && !internalHost(u.Hostname()) {
		p.add(proxyUpstream, "plain http to %s would send the token in clear: use https, an in-cluster *.svc name, or --allow-insecure-http", u.Hostname())
		return
	}
	// The address is checked when run binds it (proxy.Listen): Parse
	// touches no network.
	c.Proxy.Upstream = u
}
