package main

import (
	"bytes"
	"errors"
	"flag"
	"net"
	"path/filepath"
	"strings"
	"testing"
)

// secretMark starts every secret the fuzzer makes, so that the check for a
// leak cannot be fooled by a secret that is an ordinary word.
const secretMark = "SeCrEt-"

// FuzzParse feeds load arbitrary arguments and settings. It must not
// panic; it returns a Config that keeps the rules it validates, or an
// *invalidError (or flag.ErrHelp); and neither its error nor its output ever
// holds the session id, the refresh credential or the public key.
//
// Settings that name files other than the token file are left out, so
// that the fuzzer cannot make load probe the machine's filesystem.
func FuzzParse(f *testing.F) {
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, cmd uint8, args, url, sid, key, cred, auth, mode, dur, insecure string) {
		command := []string{"init", "run", "check"}[int(cmd)%3]
		argv := strings.Split(args, "\x00")
		if args == "" {
			argv = nil
		}
		for _, a := range argv {
			if strings.Contains(a, "file") || strings.Contains(a, "path") {
				return
			}
		}
		sid, cred = secretMark+sid, secretMark+cred
		if key == "" {
			key = pubPEM(t)
		}
		env := map[string]string{
			"AMBIENT_CP_TOKEN_URL":                  url,
			"AMBIENT_CP_TOKEN_PUBLIC_KEY":           key,
			"SESSION_ID":                            sid,
			"AMBIENT_CAPABILITY_REFRESH_CREDENTIAL": cred,
			"TOKEND_AUTH":                           auth,
			"TOKEND_FILE_MODE":                      mode,
			"TOKEND_REFRESH_INTERVAL":               dur,
			"TOKEND_MAX_BACKOFF":                    dur,
			"TOKEND_ALLOW_INSECURE_HTTP":            insecure,
			"TOKEND_TOKEN_FILE":                     filepath.Join(dir, "token"),
		}
		var out bytes.Buffer
		c, err := load(command, argv, environ(env), &out)
		text := out.String()
		if err != nil {
			var ce *invalidError
			if !errors.As(err, &ce) && !errors.Is(err, flag.ErrHelp) {
				t.Fatalf("error is neither *invalidError nor flag.ErrHelp: %v", err)
			}
			text += err.Error()
		} else {
			checkConfig(t, c)
		}
		if strings.Contains(args+url+key+auth+mode+dur+insecure, secretMark) {
			return // the fuzzer quoted the mark elsewhere: a leak check would be meaningless
		}
		for _, s := range []string{sid, cred} {
			if strings.Contains(text, s) {
				t.Fatalf("error or output holds a secret:\n%s", text)
			}
		}
		if len(key) >= 24 && strings.Contains(text, key) {
			t.Fatalf("error or output holds the public key:\n%s", text)
		}
	})
}

// checkConfig fails when c breaks a rule that load validates.
func checkConfig(t *testing.T, c *options) {
	t.Helper()
	if c.Command == "check" {
		if c.MaxAge < 0 || c.TokenFile == "" {
			t.Fatalf("check config: max-age %v, token file %q", c.MaxAge, c.TokenFile)
		}
		return
	}
	if c.InitTimeout <= 0 || c.MaxBackoff <= 0 || (c.Command == "run" && c.RefreshInterval <= 0) {
		t.Fatalf("non-positive duration: %v %v %v", c.InitTimeout, c.MaxBackoff, c.RefreshInterval)
	}
	if m := c.FileMode; m == 0 || m > 0o777 || m&0o400 == 0 || m&0o022 != 0 {
		t.Fatalf("file mode %o accepted", m)
	}
	u := c.TokenURL
	if u == nil || (u.Scheme != "http" && u.Scheme != "https") || u.User != nil || u.Hostname() == "" {
		t.Fatalf("token URL %v accepted", u)
	}
	if u.Scheme == "http" && !c.allowHTTP {
		host := strings.ToLower(u.Hostname())
		ip := net.ParseIP(host)
		if !(host == "localhost" || (ip != nil && ip.IsLoopback()) || (ip == nil && strings.Contains(host, ".svc"))) {
			t.Fatalf("plain http to %q accepted", host)
		}
	}
	if c.Auth == authEncryptedSession {
		sid, key := session(c).SessionID.Reveal(), session(c).PublicKey
		if len(sid) < 8 || strings.ContainsAny(sid, " \t\r\n") || key == nil || key.N.BitLen() < 2048 {
			t.Fatalf("encrypted-session config with a bad session id or key accepted")
		}
	}
}
