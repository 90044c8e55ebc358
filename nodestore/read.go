package nodestore

import (
	"fmt"
	"os"
	"slices"
	"syscall"
)

// maxFileSize bounds how much of a node file is read: Serf's tags fit in
// 512 bytes, so anything near this is not a node file.
const maxFileSize = 64 << 10

// fileKind is what a directory entry is, as far as List cares.
type fileKind uint8

const (
	kindRegular fileKind = iota + 1
	kindDir
	kindSymlink
	kindOther
)

func (k fileKind) String() string {
	switch k {
	case kindRegular:
		return "regular file"
	case kindDir:
		return "directory"
	case kindSymlink:
		return "symlink"
	}
	return "device, FIFO or socket"
}

func kindOf(mode uint32) fileKind {
	switch mode & syscall.S_IFMT {
	case syscall.S_IFREG:
		return kindRegular
	case syscall.S_IFDIR:
		return kindDir
	case syscall.S_IFLNK:
		return kindSymlink
	}
	return kindOther
}

// kindError is a node file that is no regular file. It does not name the
// file: List's EntryError does.
type kindError struct{ kind fileKind }

func (e *kindError) Error() string { return fmt.Sprintf("is a %s, not a node file", e.kind) }

// errTooLarge is a file larger than any node file.
var errTooLarge = fmt.Errorf("is larger than %d bytes, not a node file", maxFileSize)

// readFile returns the content of the node file name in the directory open
// as dirfd (or, with dirfd negative, of the file p), read into buf (which
// may be nil) and at most maxFileSize bytes long, and its index key. It
// makes the system calls itself: os.Open's set-up of a File (poller
// registration, two fcntl calls each way) cost more than reading a node
// file, List reads one file per node, and a buffer reused across a List
// spares an allocation per node.
//
// Anything but a regular file is a *kindError, a file too large is
// errTooLarge, and a failed system call is an *os.PathError naming p.
func readFile(dirfd int, name, p string, buf []byte) ([]byte, fileKey, error) {
	fd, err := openNode(dirfd, name, p)
	switch err {
	case nil:
	case syscall.ELOOP: // O_NOFOLLOW met a symlink
		return nil, fileKey{}, &kindError{kindSymlink}
	case syscall.ENXIO, syscall.ENODEV: // a socket, or a device without its driver
		return nil, fileKey{}, &kindError{kindOther}
	default:
		return nil, fileKey{}, &os.PathError{Op: "open", Path: p, Err: err}
	}
	defer syscall.Close(fd)
	// Stat before reading: a change after the stat then leaves a key that
	// no longer matches (index.go), never a matching key with old bytes.
	key, kind, err := fstat(fd, p)
	if err != nil {
		return nil, fileKey{}, err
	}
	if kind != kindRegular {
		return nil, fileKey{}, &kindError{kind}
	}
	buf = buf[:0]
	for {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, 512)
		}
		var n int
		err := ignoringEINTR(func() (err error) {
			n, err = syscall.Read(fd, buf[len(buf):min(cap(buf), maxFileSize+1)])
			return err
		})
		if err != nil {
			return nil, fileKey{}, &os.PathError{Op: "read", Path: p, Err: err}
		}
		if n <= 0 {
			return buf, key, nil
		}
		if buf = buf[:len(buf)+n]; len(buf) > maxFileSize {
			return nil, fileKey{}, errTooLarge
		}
	}
}

// ignoringEINTR retries f while it fails with EINTR, which a signal can
// cause on some file systems even with SA_RESTART.
func ignoringEINTR(f func() error) error {
	for {
		if err := f(); err != syscall.EINTR {
			return err
		}
	}
}
