package nodestore

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

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
	return strings.Fields(string(b[:n])), nil
}
