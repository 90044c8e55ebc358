package nodestore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/rogpeppe/go-internal/lockedfile"
)

// Store is a registry directory.
type Store struct {
	dir string
	// lockFile is the lock file while this process holds the lock (Lock);
	// it keeps the flags.
	lockFile *lockedfile.File
	unsynced atomic.Bool // renames or removals not yet fsynced (Sync)
	// fresh holds the content of the node files PutAll wrote while this
	// process holds the lock, for List to use instead of reading them
	// back (list.go).
	fresh map[string][]byte
	now   func() time.Time // the clock that dates index entries (tests)
}

// Open returns the store in dir, creating the directory (mode 0755) when it
// does not exist yet.
func Open(dir string) (*Store, error) {
	if dir == "" {
		return nil, errors.New("open registry: no directory given")
	}
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, err
	case !fi.IsDir():
		return nil, fmt.Errorf("open registry %s: not a directory", dir)
	}
	return &Store{dir: dir}, nil
}

// Dir returns the registry directory.
func (s *Store) Dir() string { return s.dir }

// path returns the path of the node file of name, refusing any name that
// could address something else.
func (s *Store) path(name string) (string, error) {
	if err := ValidName(name); err != nil {
		return "", fmt.Errorf("node %q: %w", name, err)
	}
	return filepath.Join(s.dir, name), nil
}

// Remove unregisters the node called name. Removing a node that is not
// registered is not an error; removed reports whether there was one. The
// removal is durable after Sync.
func (s *Store) Remove(name string) (removed bool, err error) {
	p, err := s.path(name)
	if err != nil {
		return false, err
	}
	fi, err := os.Lstat(p)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if fi.IsDir() {
		return false, fmt.Errorf("remove node %s: is a directory", p)
	}
	if err := os.Remove(p); err != nil {
		return false, err
	}
	delete(s.fresh, name)
	s.unsynced.Store(true)
	return true, nil
}

// Sync makes the registry's renames and removals since the last Sync
// survive a crash: one fsync of the directory, if anything changed.
func (s *Store) Sync() error {
	if !s.unsynced.Swap(false) {
		return nil
	}
	if err := syncDir(s.dir); err != nil {
		s.unsynced.Store(true)
		return err
	}
	return nil
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
