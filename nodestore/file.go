package nodestore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/google/renameio/v2"
	"github.com/rogpeppe/go-internal/lockedfile"
)

// lockName is the lock file inside the registry. Like every reserved name it
// starts with a dot, so List never mistakes it for a node.
const lockName = ".lock"

// Lock takes the registry's exclusive lock, waiting until ctx is done. The
// lock is an flock(2) on a file in the directory, so the kernel releases it
// when its holder dies: a crashed run never leaves a stale lock behind.
// While this process holds it, List also removes temp files left by runs
// that died while writing a node file, and keeps the index up to date.
func (s *Store) Lock(ctx context.Context) (unlock func(), err error) {
	flock := lockedfile.MutexAt(filepath.Join(s.dir, lockName))
	type result struct {
		unlock func()
		err    error
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
		u, err := flock.Lock()
		mu.Lock()
		defer mu.Unlock()
		if abandoned {
			if err == nil {
				u()
			}
			return
		}
		ch <- result{u, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, fmt.Errorf("lock registry %s: %v", s.dir, r.err)
		}
		s.locked.Store(true)
		return func() {
			s.locked.Store(false)
			r.unlock()
		}, nil
	case <-ctx.Done():
		mu.Lock()
		abandoned = true
		select {
		case r := <-ch: // taken just before we gave up
			if r.err == nil {
				r.unlock()
			}
		default:
		}
		mu.Unlock()
		return nil, fmt.Errorf("lock registry %s: %v (another serf-hb run holds it)", s.dir, context.Cause(ctx))
	}
}

// removeTemp removes the entry name if it is a regular file: one of
// renameio's temp files for node files (isTemp), seen by List. Every writer
// holds the lock, so while we hold it any such file belongs to a run that
// died.
func (s *Store) removeTemp(name string) {
	p := filepath.Join(s.dir, name)
	if fi, err := os.Lstat(p); err == nil && fi.Mode().IsRegular() {
		os.Remove(p)
	}
}

// isTemp reports whether name has the shape of a renameio temp file.
func isTemp(name string) bool {
	if len(name) < 3 || name[0] != '.' {
		return false
	}
	base := strings.TrimRight(name[1:], "0123456789")
	return len(base) < len(name)-1 && ValidName(base) == nil
}

// writeAtomic replaces p with data: a temp file in dir, fsync, rename, then
// an fsync of dir so that the rename itself survives a crash.
func writeAtomic(dir, p string, data []byte) error {
	f, err := renameio.NewPendingFile(p, renameio.WithTempDir(dir), renameio.WithPermissions(0o644))
	if err != nil {
		return err
	}
	defer f.Cleanup()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.CloseAtomicallyReplace(); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return fmt.Errorf("sync %s: %v", dir, err)
	}
	return nil
}

// Flag reports whether the flag called name is set. Flags are small files
// that outlive a run, such as "a reload is due".
func (s *Store) Flag(name string) bool {
	_, err := os.Lstat(filepath.Join(s.dir, "."+name))
	return err == nil
}

// SetFlag sets or clears the flag called name. Flags outlive a crashed
// process, not a crashed machine: they are not fsynced. The one flag
// serf-hb keeps, "a reload is due", means nothing after a power loss (the
// service then starts from the installed file anyway), and the two
// directory fsyncs it would cost are a tenth of an event's run time.
func (s *Store) SetFlag(name string, on bool) error {
	p := filepath.Join(s.dir, "."+name)
	if on {
		if s.Flag(name) {
			return nil
		}
		// An empty file: there is nothing in it that a crash could tear.
		f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		return f.Close()
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
