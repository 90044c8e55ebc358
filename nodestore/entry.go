package nodestore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"syscall"
)

// EntryError is a registry entry that is not a node file: a name that
// ValidName rejects ("web1~", "README.txt"), a file whose content is not a
// node's, a directory, a symlink, a device, FIFO or socket, or a file that
// cannot be read. List skips it and returns it; the other entries are
// still the registry.
type EntryError struct {
	Path string // the entry's path: the registry directory and its name
	Err  error  // what is wrong with it, without the path
}

// Error names the entry, says what is wrong with it and ends with a hint
// the operator can paste into a shell.
func (e *EntryError) Error() string {
	p := e.Path
	if strings.HasPrefix(p, "-") { // from a relative registry path: not an option for mv
		p = "./" + p
	}
	q := shellQuote(p)
	hint := "move it out of the registry: mv " + q + " /tmp/"
	if errors.Is(e.Err, fs.ErrPermission) {
		hint = "make it readable (chmod a+r " + q + ") or " + hint
	}
	return "registry entry " + q + ": " + e.Err.Error() + "; hint: " + hint
}

// Unwrap returns Err: errors.Is(e, fs.ErrPermission) tells an unreadable
// entry.
func (e *EntryError) Unwrap() error { return e.Err }

// entryError sorts out an error reading the entry at p: the entry's own
// fault, returned as its EntryError, or any other failure (out of file
// descriptors or memory, a stale NFS handle...), returned as it is. The
// latter fails the whole List: it says nothing against the entry, and
// leaving a node out for it would drop a server from the config.
func entryError(p string, err error) (*EntryError, error) {
	var (
		ke *kindError
		pe *os.PathError
	)
	switch {
	case errors.As(err, &ke), errors.Is(err, errTooLarge):
		return &EntryError{Path: p, Err: err}, nil
	case errors.As(err, &pe) && entryErrno(pe.Err):
		return &EntryError{Path: p, Err: fmt.Errorf("%s: %w", pe.Op, pe.Err)}, nil
	}
	return nil, err
}

// entryErrno reports whether err, from a system call on a registry entry,
// is a fault of that entry.
func entryErrno(err error) bool {
	switch err {
	case syscall.EACCES, syscall.EPERM, syscall.EIO, syscall.EOVERFLOW:
		return true
	}
	return false
}

// shellQuote returns s as one shell word: as it is when it holds only
// characters no shell treats specially there, else single-quoted.
func shellQuote(s string) string {
	plain := s != "" && s[0] != '~' && strings.IndexFunc(s, func(r rune) bool {
		return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || strings.ContainsRune("_.,:/@%+~-", r))
	}) < 0
	if plain {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
