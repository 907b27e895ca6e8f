package wallalarm

import (
	"testing"
	"time"

	"github.com/ambient-code/tokend/test/testkit"
)

// TestAlarmDeliversOnTheWallClock: an alarm for a time already past
// delivers at once; one a few milliseconds ahead delivers, and not before
// the wall clock has reached its time (the kernel's CLOCK_REALTIME, read
// here through time.Now); one an hour ahead has not delivered meanwhile.
func TestAlarmDeliversOnTheWallClock(t *testing.T) {
	far := armed(t, time.Now().Add(time.Hour))
	testkit.Await(t, "the alarm for a past time", armed(t, time.Now().Add(-time.Minute)).C())

	at := time.Now().Add(20 * time.Millisecond)
	testkit.Await(t, "the alarm 20 ms ahead", armed(t, at).C())
	if now := time.Now().Round(0); now.Before(at) {
		t.Fatalf("delivered at %s, before its time %s", now.Format(time.RFC3339Nano), at.Format(time.RFC3339Nano))
	}
	select {
	case <-far.C():
		t.Fatal("the alarm an hour ahead delivered")
	default:
	}
}

// TestStopEndsTheAlarm: Stop returns (its watcher ended) whether the alarm
// delivered or not, and a stopped alarm does not deliver.
func TestStopEndsTheAlarm(t *testing.T) {
	fired, err := New(time.Now().Add(-time.Second))
	if err != nil {
		t.Fatal(err)
	}
	testkit.Await(t, "the alarm", fired.C())
	fired.Stop()

	waiting, err := New(time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	waiting.Stop()
	select {
	case <-waiting.C():
		t.Fatal("a stopped alarm delivered")
	default:
	}
}

// armed arms an alarm for at, stopped when the test ends.
func armed(t *testing.T, at time.Time) *Alarm {
	t.Helper()
	a, err := New(at)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(a.Stop)
	return a
}
