//go:build !linux

package nodestore

import (
	"errors"
	"os"
	"syscall"
)

// indexSupported: the index is used on Linux only, where the ctime it
// relies on is known to be reported (index.go). Elsewhere the keys are
// empty and never consulted.
const indexSupported = false

// statAt stats the file p without following a symlink. A missing file is
// an os.ErrNotExist error.
func statAt(_ int, _, p string) (fileKey, fileKind, error) {
	var st syscall.Stat_t
	if err := ignoringEINTR(func() error { return syscall.Lstat(p, &st) }); err != nil {
		return fileKey{}, 0, &os.PathError{Op: "lstat", Path: p, Err: err}
	}
	return fileKey{}, kindOf(uint32(st.Mode)), nil
}

// fstat stats the open file fd (p is its path, for errors).
func fstat(fd int, p string) (fileKey, fileKind, error) {
	var st syscall.Stat_t
	if err := ignoringEINTR(func() error { return syscall.Fstat(fd, &st) }); err != nil {
		return fileKey{}, 0, &os.PathError{Op: "fstat", Path: p, Err: err}
	}
	return fileKey{}, kindOf(uint32(st.Mode)), nil
}

// openNode opens the file p for reading. It follows no symlink (ELOOP) and
// does not wait for a FIFO's writer.
func openNode(_ int, _, p string) (fd int, err error) {
	err = ignoringEINTR(func() (err error) {
		fd, err = syscall.Open(p, syscall.O_RDONLY|syscall.O_CLOEXEC|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
		return err
	})
	return fd, err
}

// syncFSSupported: there is no syncfs(2) here, and sync(2) may return
// before the writes are done; PutAll fsyncs each file instead.
func syncFSSupported() bool { return false }

func syncFS(*os.File) error { return errors.ErrUnsupported }
