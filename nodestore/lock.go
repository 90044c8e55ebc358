package nodestore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/rogpeppe/go-internal/lockedfile"
)

// lockName is the lock file inside the registry. Like every reserved name it
// starts with a dot, so List never mistakes it for a node.
const lockName = ".lock"

// Lock takes the registry's exclusive lock, waiting until ctx is done. The
// lock is an flock(2) on a file in the directory, so the kernel releases it
// when its holder dies: a crashed run never leaves a stale lock behind.
// While this process holds it, List also removes temp files left by runs
// that died while writing a node file, and keeps the index up to date, and
// the flags can be set (SetFlag).
func (s *Store) Lock(ctx context.Context) (unlock func(), err error) {
	p := filepath.Join(s.dir, lockName)
	type result struct {
		f   *lockedfile.File
		err error
	}
	// The waiting goroutine and a caller that gives up agree under mu:
	// either the result was handed over before the caller gave up (and
	// the caller releases it), or the goroutine sees abandoned and
	// releases the lock itself. Neither way can a lock be left held.
	var (
		mu        sync.Mutex
		abandoned bool
	)
	ch := make(chan result, 1)
	go func() {
		f, err := lockedfile.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
		mu.Lock()
		defer mu.Unlock()
		if abandoned {
			if err == nil {
				f.Close()
			}
			return
		}
		ch <- result{f, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, fmt.Errorf("lock registry %s: %v", s.dir, r.err)
		}
		s.lockFile = r.f
		return func() {
			s.lockFile, s.fresh = nil, nil
			r.f.Close()
		}, nil
	case <-ctx.Done():
		mu.Lock()
		abandoned = true
		select {
		case r := <-ch: // taken just before we gave up
			if r.err == nil {
				r.f.Close()
			}
		default:
		}
		mu.Unlock()
		return nil, fmt.Errorf("lock registry %s: %v (another serf-hb run holds it)", s.dir, context.Cause(ctx))
	}
}
