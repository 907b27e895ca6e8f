package tokendir

import (
	"encoding/json"
	"time"

	"github.com/ambient-code/tokend/internal/exchange"
)

// JSON returns the output that writes the token with its expiry as one
// JSON object at path (--json-file), for consumers that refresh ahead of
// the expiry or monitor it:
//
//	{"token": "…", "expires_at": "2026-11-29T12:30:00Z", "fingerprint": "…", "written_at": "2026-11-29T12:25:00Z"}
//
// expires_at (RFC 3339, UTC, whole seconds) is omitted when the expiry is
// unknown; fingerprint is the token's short name as tokend's logs and
// /statusz give it; written_at is when tokend first wrote this token with
// this expiry. The document is rewritten only when the token or its expiry
// changes, also across restarts of tokend.
//
// Once the token is withdrawn (the control plane definitively refused the
// credential), the document holds no token, and says why and since when:
//
//	{"withdrawn": "token endpoint answered 403 Forbidden: runner access revoked: …", "withdrawn_at": "2026-11-29T12:31:07Z"}
func JSON(path string) Output {
	return Output{path: path, name: "JSON file", render: renderJSON, withdraw: withdrawJSON}
}

// document is the JSON output's content: a token, or its withdrawal.
type document struct {
	Token       string `json:"token,omitempty"`
	ExpiresAt   string `json:"expires_at,omitempty"`
	Fingerprint string `json:"fingerprint,omitempty"`
	WrittenAt   string `json:"written_at,omitempty"`
	Withdrawn   string `json:"withdrawn,omitempty"`
	WithdrawnAt string `json:"withdrawn_at,omitempty"`
}

func renderJSON(tok exchange.Token, prev []byte, now time.Time) []byte {
	doc := document{Token: tok.Value.Reveal(), Fingerprint: tok.Value.Fingerprint()}
	if !tok.Expiry.IsZero() {
		doc.ExpiresAt = tok.Expiry.UTC().Format(time.RFC3339)
	}
	var old document
	if json.Unmarshal(prev, &old) == nil && old.Token == doc.Token && old.ExpiresAt == doc.ExpiresAt && old.WrittenAt != "" {
		return prev // the same token and expiry: keep the file as it is
	}
	doc.WrittenAt = now.UTC().Format(time.RFC3339)
	data, _ := json.Marshal(doc) // strings only: it cannot fail
	return append(data, '\n')
}

func withdrawJSON(reason string, prev []byte, now time.Time) []byte {
	var old document
	if json.Unmarshal(prev, &old) == nil && old.Withdrawn == reason && old.WithdrawnAt != "" {
		return prev // withdrawn for the same reason: keep the time it began
	}
	data, _ := json.Marshal(document{Withdrawn: reason, WithdrawnAt: now.UTC().Format(time.RFC3339)})
	return append(data, '\n')
}
