package render

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/google/renameio/v2"
)

// Result says what Install did.
type Result int

const (
	// Unchanged: the destination already held exactly these bytes.
	Unchanged Result = iota
	// Installed: the destination now holds the new bytes, swapped in by
	// rename.
	Installed
	// InstalledInPlace: the rename was refused (EBUSY, EXDEV: a single-file
	// bind mount), so the bytes were written over the existing file.
	InstalledInPlace
)

func (r Result) String() string {
	switch r {
	case Unchanged:
		return "unchanged"
	case Installed:
		return "installed"
	case InstalledInPlace:
		return "installed-in-place"
	}
	return fmt.Sprintf("Result(%d)", int(r))
}

// CheckError is returned by Install when the check refused the staged file.
type CheckError struct{ Err error }

func (e *CheckError) Error() string { return e.Err.Error() }
func (e *CheckError) Unwrap() error { return e.Err }

// Current returns the destination's content, or nil when it does not exist.
func Current(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

// Install makes path hold content. When path already holds exactly content
// it does nothing. Otherwise it writes content to a temp file in path's
// directory, hands that file's name to check (nil: no check), and only when
// check returns nil renames it over path, fsyncing the file and the
// directory. The new file gets the old one's mode and owner (0644 and the
// process's owner for a new file). On any error path is left as it was.
func Install(path string, content []byte, check func(staged string) error) (Result, error) {
	old, err := Current(path)
	if err != nil {
		return 0, fmt.Errorf("read %s: %v", path, err)
	}
	if old != nil && bytes.Equal(old, content) {
		return Unchanged, nil
	}
	dir := filepath.Dir(path)
	removeStaleTemps(dir, filepath.Base(path))
	f, err := renameio.NewPendingFile(path, renameio.WithTempDir(dir),
		renameio.WithPermissions(0o644), renameio.WithExistingPermissions())
	if err != nil {
		return 0, fmt.Errorf("stage %s: %v", path, err)
	}
	defer f.Cleanup()
	if err := keepOwner(f.File, path); err != nil {
		return 0, err
	}
	if _, err := f.Write(content); err != nil {
		return 0, fmt.Errorf("stage %s: %v", path, err)
	}
	if check != nil {
		if err := check(f.Name()); err != nil {
			return 0, &CheckError{err}
		}
	}
	err = f.CloseAtomicallyReplace()
	if errors.Is(err, syscall.EBUSY) || errors.Is(err, syscall.EXDEV) {
		if err := writeInPlace(path, content); err != nil {
			return 0, err
		}
		return InstalledInPlace, nil
	}
	if err != nil {
		return 0, fmt.Errorf("install %s: %v", path, err)
	}
	if err := syncDir(dir); err != nil {
		return 0, fmt.Errorf("install %s: %v", path, err)
	}
	return Installed, nil
}

// keepOwner gives the staged file f the owner of the existing file at path.
func keepOwner(f *os.File, path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return nil // no existing file: the process's owner is right
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	mine, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stage %s: %v", path, err)
	}
	if m, ok := mine.Sys().(*syscall.Stat_t); ok && m.Uid == st.Uid && m.Gid == st.Gid {
		return nil
	}
	if err := f.Chown(int(st.Uid), int(st.Gid)); err != nil {
		return fmt.Errorf("keep owner %d:%d of %s: %v", st.Uid, st.Gid, path, err)
	}
	// chown may clear setuid/setgid bits; restore the mode renameio set.
	return f.Chmod(fi.Mode().Perm())
}

// writeInPlace overwrites path with content without replacing the inode,
// for destinations that cannot be renamed over (a file bind-mounted into a
// container). It is not atomic: it writes first and truncates last, so a
// reader never sees an empty file, only, for an instant, a mix.
func writeInPlace(path string, content []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("install %s in place: %v", path, err)
	}
	defer f.Close()
	if _, err := f.WriteAt(content, 0); err != nil {
		return fmt.Errorf("install %s in place: %v", path, err)
	}
	if err := f.Truncate(int64(len(content))); err != nil {
		return fmt.Errorf("install %s in place: %v", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("install %s in place: %v", path, err)
	}
	return f.Close()
}

// removeStaleTemps removes the temp files ".BASE<digits>" that renameio
// leaves in dir when a run dies between staging and renaming. The caller
// holds the registry lock, so no live run owns one.
func removeStaleTemps(dir, base string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	prefix := "." + base
	for _, e := range entries {
		name := e.Name()
		rest, ok := strings.CutPrefix(name, prefix)
		if ok && rest != "" && strings.Trim(rest, "0123456789") == "" && e.Type().IsRegular() {
			os.Remove(filepath.Join(dir, name))
		}
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return err
	}
	return nil
}
