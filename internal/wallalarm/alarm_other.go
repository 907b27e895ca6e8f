//go:build !linux

package wallalarm

import (
	"errors"
	"time"
)

// New returns errors.ErrUnsupported: alarms on the wall clock are made
// with timerfd, which only Linux has.
func New(at time.Time) (c <-chan struct{}, stop func(), err error) {
	return nil, nil, errors.ErrUnsupported
}
