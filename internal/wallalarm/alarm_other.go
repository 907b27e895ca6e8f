//go:build !linux

package wallalarm

import (
	"errors"
	"time"
)

// New returns errors.ErrUnsupported: alarms on the wall clock are made
// with timerfd, which only Linux has.
func New(at time.Time) (*Alarm, error) { return nil, errors.ErrUnsupported }
