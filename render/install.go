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

// Current returns the destination's content, or nil when it does not exist.
func Current(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

// Pending is new content for a destination file, staged next to the file
// it will replace, in renameio's shape: Stage, let the caller check the
// staged file, then Commit or Cleanup.
type Pending struct {
	path    string // the destination as the caller named it
	target  string // the file a commit replaces: path, or the end of its symlinks
	content []byte
	f       *renameio.PendingFile // nil when the content is unchanged
	// flushing: the fsync SyncAhead started, which reports once (nil:
	// none started, or its result taken into flushErr).
	flushing chan error
	flushErr error
}

// Stage compares content with the destination path. When path already
// holds exactly content, the Pending is unchanged and nothing is written.
// Otherwise content is written to a temp file in the directory of the file
// it will replace, with that file's mode and owner (0644 and the process's
// owner for a new file). A symlinked path is followed: the link stays, and
// its target is what gets replaced.
func Stage(path string, content []byte) (*Pending, error) {
	target, err := resolve(path)
	if err != nil {
		return nil, err
	}
	p := &Pending{path: path, target: target, content: content}
	old, err := Current(target)
	if err != nil {
		return nil, fmt.Errorf("read %s: %v", target, err)
	}
	if old != nil && bytes.Equal(old, content) {
		return p, nil
	}
	dir := filepath.Dir(target)
	removeStaleTemps(dir, filepath.Base(target))
	f, err := renameio.NewPendingFile(target, renameio.WithTempDir(dir),
		renameio.WithPermissions(0o644), renameio.WithExistingPermissions())
	if err != nil {
		return nil, stageError(target, err)
	}
	p.f = f
	if err := keepOwner(f.File, target); err != nil {
		f.Cleanup()
		return nil, err
	}
	if _, err := f.Write(content); err != nil {
		f.Cleanup()
		return nil, stageError(target, err)
	}
	return p, nil
}

// stageError explains a failure to stage target without the temp file's
// random name, which means nothing to the reader.
func stageError(target string, err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	msg := fmt.Sprintf("stage %s: %v", target, err)
	if errors.Is(err, os.ErrPermission) || errors.Is(err, syscall.EROFS) {
		msg += fmt.Sprintf("; hint: the file is replaced by a rename, so its directory %s must be writable by this user (uid %d)", filepath.Dir(target), os.Getuid())
	}
	return errors.New(msg)
}

// resolve follows the symlinks of path to the file they end at (which may
// not exist yet).
func resolve(path string) (string, error) {
	target := path
	for range 40 {
		fi, err := os.Lstat(target)
		if err != nil || fi.Mode()&os.ModeSymlink == 0 {
			return target, nil
		}
		link, err := os.Readlink(target)
		if err != nil {
			return "", fmt.Errorf("read symlink %s: %v", target, err)
		}
		if !filepath.IsAbs(link) {
			link = filepath.Join(filepath.Dir(target), link)
		}
		target = link
	}
	return "", fmt.Errorf("resolve %s: too many levels of symbolic links", path)
}

// Changed reports whether the destination's content differs from the
// staged content.
func (p *Pending) Changed() bool { return p.f != nil }

// Name returns the staged file's path, or "" when nothing is staged.
func (p *Pending) Name() string {
	if p.f == nil {
		return ""
	}
	return p.f.Name()
}

// Target returns the file a commit replaces: the destination, or the end
// of its symlinks.
func (p *Pending) Target() string { return p.target }

// Commit renames the staged file over the destination, fsyncing the file
// and the directory. Where the rename is refused (EBUSY, EXDEV: a
// single-file bind mount), the content is written over the existing file
// instead. An unchanged Pending commits nothing.
func (p *Pending) Commit() (Result, error) {
	if p.f == nil {
		return Unchanged, nil
	}
	if err := p.flushed(); err != nil {
		return 0, fmt.Errorf("install %s: %v", p.target, err)
	}
	err := p.f.CloseAtomicallyReplace()
	if errors.Is(err, syscall.EBUSY) || errors.Is(err, syscall.EXDEV) {
		if err := writeInPlace(p.target, p.content); err != nil {
			return 0, err
		}
		return InstalledInPlace, nil
	}
	if err != nil {
		return 0, fmt.Errorf("install %s: %v", p.target, err)
	}
	if err := syncDir(filepath.Dir(p.target)); err != nil {
		return 0, fmt.Errorf("install %s: %v", p.target, err)
	}
	return Installed, nil
}

// Sync fsyncs the staged content, so that a later Commit has only the
// rename and the directory left to do: a caller may have it written and
// flushed in a goroutine while other work goes on. An unchanged Pending
// syncs nothing.
func (p *Pending) Sync() error {
	if p.f == nil {
		return nil
	}
	if err := p.f.Sync(); err != nil {
		return fmt.Errorf("stage %s: %v", p.target, err)
	}
	return nil
}

// SyncAhead starts fsyncing the staged content in a goroutine, so that
// the disk's write overlaps the caller's other work (HAProxy taking the
// change live, a check); Commit then has little left to flush. Commit and
// Keep wait for it and fail with its error: a second fsync after a failed
// one may report success with the data lost.
func (p *Pending) SyncAhead() {
	if p.f == nil || p.flushing != nil {
		return
	}
	p.flushing = make(chan error, 1)
	go func() { p.flushing <- p.f.Sync() }()
}

// flushed waits for the fsync SyncAhead started, if any, and returns its
// error.
func (p *Pending) flushed() error {
	if p.flushing != nil {
		p.flushErr = <-p.flushing
		p.flushing = nil
	}
	return p.flushErr
}

// Keep moves the staged file to path, replacing what was there, instead of
// committing it: a refused file kept for the operator to read.
func (p *Pending) Keep(path string) error {
	if p.f == nil {
		return nil
	}
	if err := errors.Join(p.flushed(), p.f.Sync()); err != nil {
		return fmt.Errorf("keep %s: %v", path, err)
	}
	if err := os.Rename(p.f.Name(), path); err != nil {
		return fmt.Errorf("keep refused file as %s: %v", path, err)
	}
	return nil
}

// Cleanup removes the staged file if it is still there. It is safe to call
// after Commit or Keep, and more than once.
func (p *Pending) Cleanup() {
	p.flushed()
	if p.f != nil {
		p.f.Cleanup()
	}
}

// WriteFile replaces path with content atomically (temp file, fsync,
// rename, directory fsync), keeping its mode and owner, and following its
// symlinks, whether or not the content changed.
func WriteFile(path string, content []byte) error {
	p, err := Stage(path, content)
	if err != nil {
		return err
	}
	defer p.Cleanup()
	_, err = p.Commit()
	return err
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
