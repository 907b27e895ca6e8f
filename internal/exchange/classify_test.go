package exchange

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"testing"
)

// TestClassify pins the one classification: what a caller retries later.
func TestClassify(t *testing.T) {
	status := func(c int) error { return fmt.Errorf("wrapped: %w", &StatusError{StatusCode: c}) }
	tests := []struct {
		name  string
		err   error
		later bool
	}{
		{"nil", nil, false},
		{"401", status(401), false},
		{"403", status(403), false},
		{"302", status(302), false},
		{"408", status(408), true},
		{"429", status(429), true},
		{"500", status(500), true},
		{"502", status(502), true},
		{"503", status(503), true},
		{"504", status(504), true},
		{"invalid answer", fmt.Errorf("%w: not JSON", ErrInvalidResponse), true},
		{"expired", ErrExpired, true},
		{"bearer credential file", fmt.Errorf("%w: missing", ErrCredential), true},
		{"certificate", &tls.CertificateVerificationError{Err: errors.New("unknown authority")}, false},
		{"cancelled", context.Canceled, false},
		{"deadline", context.DeadlineExceeded, true},
		{"transport", errors.New("connection refused"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if Retryable(tt.err) != tt.later {
				t.Errorf("Retryable = %v, want %v", !tt.later, tt.later)
			}
		})
	}
}
