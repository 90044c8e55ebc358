package nodestore

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Flags are small pieces of state that outlive a run, such as "a reload of
// this output is due". They are kept in the lock file, one name per line:
// setting or clearing one is a write to a file already open, where a file
// per flag cost a create and an unlink, each a journalled metadata
// operation (together ~0.5 ms of an event's run on ext4). They outlive a
// crashed process, not a crashed machine: they are not fsynced. The flags
// serf-hb keeps mean nothing after a power loss (the service then starts
// from the installed file anyway).
//
// A flag's name is any string but the empty one without a newline (the
// separator) or a NUL, so that it can hold a path ("reload-pending
// /etc/haproxy/haproxy.cfg"): a line is a name as it is, spaces included,
// and two names are the same flag only when they are equal.

// maxFlagsSize bounds the flags, the lock file's size: room for hundreds
// of names that hold a path.
const maxFlagsSize = 1 << 20

// validFlag reports why name cannot be a flag's name, or nil when it can.
func validFlag(name string) error {
	switch {
	case name == "":
		return errors.New("empty flag name")
	case strings.ContainsAny(name, "\n\x00"):
		return fmt.Errorf("flag name %q holds a newline or NUL, which flag names cannot", name)
	}
	return nil
}

// Flag reports whether the flag called name is set. The caller holds the
// lock. Flags that cannot be read (or an unlocked store, or a name that
// SetFlag refuses) report true: a flag marks work that is due, and doing
// it once more is the safe mistake.
func (s *Store) Flag(name string) bool {
	if validFlag(name) != nil {
		return true
	}
	flags, err := s.flags()
	return err != nil || slices.Contains(flags, name)
}

// SetFlag sets or clears the flag called name. The caller holds the lock.
// A name that is empty or holds a newline or NUL is an error.
func (s *Store) SetFlag(name string, on bool) error {
	if err := validFlag(name); err != nil {
		return fmt.Errorf("set flag: %v", err)
	}
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
	return s.writeFlags(flags, name)
}

// writeFlags replaces the lock file's flags with flags; what names the
// flag being set, for errors.
func (s *Store) writeFlags(flags []string, what string) error {
	var b []byte
	for _, f := range flags {
		b = append(append(b, f...), '\n')
	}
	if len(b) > maxFlagsSize {
		return fmt.Errorf("set flag %q: the flags would take %d bytes, more than the %d the lock file holds", what, len(b), maxFlagsSize)
	}
	// In place, then truncated: a process that dies in between leaves the
	// old flags' tail behind, which can only read as flags set, the safe
	// mistake.
	if _, err := s.lockFile.WriteAt(b, 0); err != nil {
		return fmt.Errorf("set flag %q: %v", what, err)
	}
	if err := s.lockFile.Truncate(int64(len(b))); err != nil {
		return fmt.Errorf("set flag %q: %v", what, err)
	}
	return nil
}

// flags returns the names of the flags set, one per line of the lock file.
func (s *Store) flags() ([]string, error) {
	if s.lockFile == nil {
		return nil, errors.New("read flags: registry not locked")
	}
	b, err := io.ReadAll(io.NewSectionReader(s.lockFile, 0, maxFlagsSize+1))
	if err != nil {
		return nil, fmt.Errorf("read flags: %v", err)
	}
	if len(b) > maxFlagsSize {
		return nil, fmt.Errorf("read flags: lock file %s is larger than %d bytes", s.lockFile.Name(), maxFlagsSize)
	}
	var flags []string
	for line := range strings.SplitSeq(string(b), "\n") {
		if line != "" {
			flags = append(flags, line)
		}
	}
	return flags, nil
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

// SetValue sets the setting key to value, replacing any earlier value in
// one write of the lock file; an empty value removes the setting, so that
// no "KEY=" line is left to read as something due. The caller holds the
// lock.
func (s *Store) SetValue(key, value string) error {
	if err := validFlag(key + "=" + value); err != nil {
		return fmt.Errorf("set %s: %v", key, err)
	}
	flags, err := s.flags()
	if err != nil {
		return err
	}
	next := slices.DeleteFunc(slices.Clone(flags), func(f string) bool { return strings.HasPrefix(f, key+"=") })
	if value != "" {
		next = append(next, key+"="+value)
	}
	if slices.Equal(next, flags) {
		return nil
	}
	return s.writeFlags(next, key)
}
