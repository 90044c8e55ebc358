package harness

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// permanent marks an error after which waiting longer cannot help.
type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Permanent wraps err so that Wait returns at once: the process awaited
// has exited, say.
func Permanent(err error) error { return permanent{err} }

// Wait calls fn every interval until it returns nil, for at most timeout
// and at most timeout/interval+2 calls. It returns nil once fn has, and
// otherwise an error that names what was awaited, how long, and fn's last
// error; an error wrapped by Permanent ends the wait at once.
func Wait(what string, timeout, interval time.Duration, fn func() error) error {
	if interval <= 0 {
		interval = 50 * time.Millisecond
	}
	deadline := time.Now().Add(timeout)
	var err error
	for i := 0; i < int(timeout/interval)+2; i++ {
		if err = fn(); err == nil {
			return nil
		}
		var p permanent
		if errors.As(err, &p) {
			return fmt.Errorf("waiting for %s: %v", what, p.err)
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(interval)
	}
	return fmt.Errorf("waited %v for %s: %v", timeout, what, err)
}

// Eventually is Wait that fails t; show, when not nil, adds what it
// returns to the failure (the logs of the step, say).
func Eventually(t testing.TB, what string, timeout, interval time.Duration, fn func() error, show ...func() string) {
	t.Helper()
	if err := Wait(what, timeout, interval, fn); err != nil {
		var extra string
		for _, s := range show {
			extra += "\n" + s()
		}
		t.Fatalf("%v%s", err, extra)
	}
}
