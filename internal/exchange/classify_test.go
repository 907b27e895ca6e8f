package exchange

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"testing"
)

// TestClassify pins the one classification: what a caller retries soon,
// what it leaves to the configuration, and what withdraws the token.
func TestClassify(t *testing.T) {
	status := func(c int) error { return fmt.Errorf("wrapped: %w", &StatusError{StatusCode: c}) }
	confirmed := func(c int) error { return fmt.Errorf("wrapped: %w", &StatusError{StatusCode: c, Confirmed: true}) }
	tests := []struct {
		name string
		err  error
		want Class
	}{
		{"nil", nil, None},
		{"401", status(401), Permanent},
		{"401 confirmed", confirmed(401), Refused},
		{"403", status(403), Refused},
		{"403 confirmed", confirmed(403), Refused},
		{"404", status(404), Permanent},
		{"302", status(302), Permanent},
		{"408", status(408), Transient},
		{"429", status(429), Transient},
		{"500", status(500), Transient},
		{"502", status(502), Transient},
		{"503", status(503), Transient},
		{"504", status(504), Transient},
		{"503 confirmed", confirmed(503), Transient},
		{"credential expired", fmt.Errorf("%w: at noon (the last answer: %w)", ErrCredentialExpired, status(503)), Refused},
		{"invalid answer", fmt.Errorf("%w: not JSON", ErrInvalidResponse), Transient},
		{"expired", ErrExpired, Transient},
		{"bearer credential file", fmt.Errorf("%w: missing", ErrCredential), Transient},
		{"public key file", fmt.Errorf("%w: missing", ErrPublicKey), Transient},
		{"certificate", &tls.CertificateVerificationError{Err: errors.New("unknown authority")}, Permanent},
		{"cancelled", context.Canceled, Permanent},
		{"deadline", context.DeadlineExceeded, Transient},
		{"transport", errors.New("connection refused"), Transient},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Classify(tt.err); got != tt.want {
				t.Errorf("Classify = %v, want %v", got, tt.want)
			}
			if Retryable(tt.err) != (tt.want == Transient) {
				t.Errorf("Retryable = %v, want %v", Retryable(tt.err), tt.want == Transient)
			}
		})
	}
}

// TestReasonIsOneLine: the reason a withdrawal gives is one line without
// the package prefix, whatever the error joins.
func TestReasonIsOneLine(t *testing.T) {
	err := fmt.Errorf("%w\nsecond cause", &StatusError{StatusCode: 403, Hint: "runner access revoked"})
	if got, want := Reason(err), "token endpoint answered 403 Forbidden: runner access revoked; second cause"; got != want {
		t.Errorf("Reason = %q, want %q", got, want)
	}
}
