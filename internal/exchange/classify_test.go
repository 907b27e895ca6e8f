package exchange

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"testing"
)

// TestClassify pins the one classification: what a caller retries later,
// and what the service-account contract retries at once inside its
// deadline.
func TestClassify(t *testing.T) {
	status := func(c int) error { return fmt.Errorf("wrapped: %w", &StatusError{StatusCode: c}) }
	tests := []struct {
		name       string
		err        error
		later, now bool
	}{
		{"nil", nil, false, false},
		{"401", status(401), false, true},
		{"403", status(403), false, false},
		{"302", status(302), false, false},
		{"408", status(408), true, false},
		{"429", status(429), true, true},
		{"500", status(500), true, false},
		{"502", status(502), true, true},
		{"503", status(503), true, true},
		{"504", status(504), true, true},
		{"invalid answer", fmt.Errorf("%w: not JSON", ErrInvalidResponse), true, false},
		{"expired", ErrExpired, true, false},
		{"ServiceAccount token file", fmt.Errorf("%w: missing", ErrIdentity), true, false},
		{"bearer credential file", fmt.Errorf("%w: missing", ErrCredential), true, false},
		{"insecure URL", ErrInsecureURL, false, false},
		{"certificate", &tls.CertificateVerificationError{Err: errors.New("unknown authority")}, false, false},
		{"cancelled", context.Canceled, false, false},
		{"deadline", context.DeadlineExceeded, true, false},
		{"transport", errors.New("connection refused"), true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			later, now := classify(tt.err)
			if later != tt.later || now != tt.now {
				t.Errorf("classify = later %v, now %v; want %v, %v", later, now, tt.later, tt.now)
			}
			if Retryable(tt.err) != tt.later {
				t.Errorf("Retryable = %v, want %v", !tt.later, tt.later)
			}
		})
	}
}
