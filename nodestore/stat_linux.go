package nodestore

import (
	"fmt"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// indexSupported: Linux reports the ctime that makes an index entry safe
// to use (index.go).
const indexSupported = true

// The node files are reached relative to the registry directory's open
// descriptor: the kernel then resolves one path component per file, not
// the whole path (a third of a stat's cost on a deep registry path).

// statAt stats the entry name of the directory open as dirfd (p is its
// path, for errors) without following a symlink. A missing file is an
// os.ErrNotExist error.
func statAt(dirfd int, name, p string) (fileKey, fileKind, error) {
	var st unix.Stat_t
	err := ignoringEINTR(func() error { return unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) })
	if err != nil {
		return fileKey{}, 0, &os.PathError{Op: "lstat", Path: p, Err: err}
	}
	return keyOf(&st), kindOf(st.Mode), nil
}

// fstat stats the open file fd (p is its path, for errors).
func fstat(fd int, p string) (fileKey, fileKind, error) {
	var st unix.Stat_t
	err := ignoringEINTR(func() error { return unix.Fstat(fd, &st) })
	if err != nil {
		return fileKey{}, 0, &os.PathError{Op: "fstat", Path: p, Err: err}
	}
	return keyOf(&st), kindOf(st.Mode), nil
}

func keyOf(st *unix.Stat_t) fileKey {
	return fileKey{ino: st.Ino, size: st.Size, mtime: st.Mtim.Nano(), ctime: st.Ctim.Nano()}
}

// openNode opens the entry name for reading, relative to dirfd, or p
// itself when dirfd is negative. It follows no symlink (ELOOP) and does not
// wait for a FIFO's writer.
func openNode(dirfd int, name, p string) (fd int, err error) {
	const flags = syscall.O_RDONLY | syscall.O_CLOEXEC | syscall.O_NOFOLLOW | syscall.O_NONBLOCK
	err = ignoringEINTR(func() (err error) {
		if dirfd < 0 {
			fd, err = syscall.Open(p, flags, 0)
		} else {
			fd, err = syscall.Openat(dirfd, name, flags, 0)
		}
		return err
	})
	return fd, err
}

// syncFSSupported: Linux has syncfs(2), which reports writeback errors
// since Linux 5.8; before, it returned 0 whatever happened, and PutAll
// fsyncs each file instead, so that a failed write is never taken for a
// durable one.
var syncFSSupported = sync.OnceValue(func() bool {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return false
	}
	var major, minor int
	if _, err := fmt.Sscanf(unix.ByteSliceToString(u.Release[:]), "%d.%d", &major, &minor); err != nil {
		return false
	}
	return major > 5 || major == 5 && minor >= 8
})

// syncFS flushes the file system holding the directory d: every dirty
// page and inode on it, and the disk's write cache, in one call. Since
// Linux 5.8 syncfs(2) reports a writeback error the file system met since
// d was opened, as fsync does for its file; PutAll opens d before it
// writes, so a failed writeback of its files is never taken for a durable
// one.
func syncFS(d *os.File) error {
	return ignoringEINTR(func() error { return unix.Syncfs(int(d.Fd())) })
}
