package proxy

import "strings"

// maxDecodes bounds how many layers of percent-encoding hasDotSegment
// peels: a path that still decodes to something new after this many is
// refused outright.
const maxDecodes = 4

// hasDotSegment reports whether the escaped request path p has a "." or
// ".." segment (RFC 3986, section 3.3) as any server on the way might see
// it: decoded once or more (%2e, %252e, any case), with an encoded slash
// (%2f) or a backslash (\, %5c) as a separator, and with a ";" parameter
// after the dots ("..;", which some servers resolve). Such a path, joined
// under the upstream's base path, could resolve to a path outside it, with
// the token attached.
func hasDotSegment(p string) bool {
	for range maxDecodes + 1 {
		if dotSegment(p) {
			return true
		}
		d := unescape(p)
		if d == p {
			return false
		}
		p = d
	}
	return true
}

// dotSegment checks one decoding of the path.
func dotSegment(p string) bool {
	p = strings.ReplaceAll(p, `\`, "/")
	for seg := range strings.SplitSeq(p, "/") {
		seg, _, _ = strings.Cut(seg, ";")
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}

// unescape decodes every valid %XX in s and leaves the rest as it is, as a
// lenient server would.
func unescape(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}
