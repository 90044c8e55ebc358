package harness

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestWait(t *testing.T) {
	t.Run("returns once fn succeeds", func(t *testing.T) {
		calls := 0
		err := Wait("the third call", 5*time.Second, time.Millisecond, func() error {
			if calls++; calls < 3 {
				return errors.New("not yet")
			}
			return nil
		})
		if err != nil || calls != 3 {
			t.Fatalf("err %v after %d calls, want nil after 3", err, calls)
		}
	})
	t.Run("gives up at the timeout with the last error", func(t *testing.T) {
		start := time.Now()
		calls := 0
		err := Wait("godot", 100*time.Millisecond, 10*time.Millisecond, func() error {
			calls++
			return errors.New("still waiting")
		})
		if err == nil || !strings.Contains(err.Error(), "waited 100ms for godot: still waiting") {
			t.Fatalf("err = %v", err)
		}
		// Bounded in count too: timeout/interval + 2 calls at most.
		if calls > 12 {
			t.Errorf("%d calls, want at most 12", calls)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("took %v", took)
		}
	})
	t.Run("a permanent error ends the wait at once", func(t *testing.T) {
		calls := 0
		err := Wait("a dead process", time.Minute, time.Millisecond, func() error {
			calls++
			return Permanent(errors.New("it exited"))
		})
		if err == nil || err.Error() != "waiting for a dead process: it exited" || calls != 1 {
			t.Fatalf("err %v after %d calls", err, calls)
		}
	})
	t.Run("bounded in count when fn is slow", func(t *testing.T) {
		calls := 0
		Wait("a slow fn", 20*time.Millisecond, 10*time.Millisecond, func() error {
			calls++
			time.Sleep(30 * time.Millisecond)
			return errors.New("slow")
		})
		if calls != 1 {
			t.Errorf("%d calls after the deadline passed in the first, want 1", calls)
		}
	})
}
