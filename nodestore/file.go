package nodestore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
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
			s.lockFile = nil
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

// writeAtomic replaces p with data: a temp file in dir, fsync, rename. The
// rename survives a crash once dir is fsynced (Store.Sync).
func writeAtomic(dir, p string, data []byte) error {
	f, err := renameio.NewPendingFile(p, renameio.WithTempDir(dir), renameio.WithPermissions(0o644))
	if err != nil {
		return err
	}
	defer f.Cleanup()
	if _, err := f.Write(data); err != nil {
		return err
	}
	return f.CloseAtomicallyReplace()
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

// Flags are small pieces of state that outlive a run, such as "a reload is
// due". They are kept in the lock file, one name per line: setting or
// clearing one is a write to a file already open, where a file per flag
// cost a create and an unlink, each a journalled metadata operation
// (together ~0.5 ms of an event's run on ext4). They outlive a crashed
// process, not a crashed machine: they are not fsynced. The one flag
// serf-hb keeps means nothing after a power loss (the service then starts
// from the installed file anyway).

// Flag reports whether the flag called name is set. The caller holds the
// lock. Flags that cannot be read (or an unlocked store) report true: a
// flag marks work that is due, and doing it once more is the safe mistake.
func (s *Store) Flag(name string) bool {
	flags, err := s.flags()
	return err != nil || slices.Contains(flags, name)
}

// SetFlag sets or clears the flag called name. The caller holds the lock.
func (s *Store) SetFlag(name string, on bool) error {
	flags, err := s.flags()
	if err != nil {
		return err
	}
	if slices.Contains(flags, name) == on {
		return nil
	}
	if on {
		flags = append(flags, name)
	} else {
		flags = slices.DeleteFunc(flags, func(f string) bool { return f == name })
	}
	var b []byte
	for _, f := range flags {
		b = append(append(b, f...), '\n')
	}
	if _, err := s.lockFile.WriteAt(b, 0); err != nil {
		return fmt.Errorf("set flag %s: %v", name, err)
	}
	if err := s.lockFile.Truncate(int64(len(b))); err != nil {
		return fmt.Errorf("set flag %s: %v", name, err)
	}
	return nil
}

// maxFlagsSize bounds the read of the lock file's flags.
const maxFlagsSize = 4 << 10

// flags returns the names of the flags set.
func (s *Store) flags() ([]string, error) {
	if s.lockFile == nil {
		return nil, errors.New("read flags: registry not locked")
	}
	b := make([]byte, maxFlagsSize)
	n, err := s.lockFile.ReadAt(b, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read flags: %v", err)
	}
	// One flag a line: a name may hold spaces (it may name a file).
	return strings.FieldsFunc(string(b[:n]), func(r rune) bool { return r == '\n' }), nil
}

// Value returns the value of the setting key, kept as the flag
// "KEY=VALUE", and whether it is set. The caller holds the lock.
func (s *Store) Value(key string) (string, bool, error) {
	flags, err := s.flags()
	if err != nil {
		return "", false, err
	}
	for _, f := range flags {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return v, true, nil
		}
	}
	return "", false, nil
}

// SetValue sets the setting key to value, replacing any earlier value.
// The caller holds the lock.
func (s *Store) SetValue(key, value string) error {
	old, set, err := s.Value(key)
	if err != nil || set && old == value {
		return err
	}
	if set {
		if err := s.SetFlag(key+"="+old, false); err != nil {
			return err
		}
	}
	return s.SetFlag(key+"="+value, true)
}
