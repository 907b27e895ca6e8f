package main

import (
	"testing"
)

// TestInsecureHTTPPolicyEdges: the plain-http policy judges host names as
// DNS does (case-insensitive, a trailing dot changes nothing) and IP
// addresses by what they are, and is not fooled by look-alikes.
func TestInsecureHTTPPolicyEdges(t *testing.T) {
	for url, ok := range map[string]bool{
		"http://LOCALHOST:8080/token":                  true,
		"http://localhost.:8080/token":                 true,
		"http://127.0.0.2:8080/token":                  true,
		"http://[::ffff:127.0.0.1]:8080/token":         true,
		"http://CP.NS.SVC:8080/token":                  true,
		"http://cp.ns.svc.cluster.local:8080/token":    true,
		"http://0.0.0.0:8080/token":                    false,
		"http://169.254.169.254/token":                 false,
		"http://[::]:8080/token":                       false,
		"http://localhost.example.com/token":           false,
		"http://127.0.0.1.nip.io/token":                false,
		"http://svc/token":                             false,
		"http://cp.svc.cluster.local.evil.com/token":   false,
		"http://cp.ns.svc:8080@evil.example.com/token": false,
		"http://evil.example.com#.svc/token":           false,
	} {
		_, err := parse("init", nil, env(t, map[string]string{"AMBIENT_CP_TOKEN_URL": url}))
		if (err == nil) != ok {
			t.Errorf("%s: err = %v, want accepted=%v", url, err, ok)
		}
	}
}
