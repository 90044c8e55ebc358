package nodestore

// PutAll's durability, paid once per batch. A start-up event carries every
// member Serf knows (10,000 at a time), and one fsync per node file cost
// 1.8-7.7 s there, for what one flush of the file system does in one go.
//
// The order is the one that keeps Put's guarantee, a node file is the old
// one or the new one after a crash, never a part: every temp file is
// written, then their data is made durable (flushData), and only then are
// they renamed over the node files; the renames are made durable by the
// directory's fsync (Sync), as for Put. A crash before the flush leaves
// temp files that the next List under the lock removes; a crash between
// the flush and Sync leaves each node file old or new, both whole.

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// batchSyncMin is the number of files from which PutAll flushes the whole
// file system once (syncFS) instead of fsyncing each file: a syncfs also
// writes whatever else is dirty on the file system, which for the one or
// few files of a usual event can cost more than their own fsyncs.
// BenchmarkPutAll compares them.
var batchSyncMin = 32

// flushMethod is how PutAll makes a batch's temp files durable; tests and
// benchmarks set it to compare.
type flushMethod int

const (
	flushAuto     flushMethod = iota // fewer than batchSyncMin puts: flushOneByOne; else syncFS, or flushEach for fewer files
	flushSyncFS                      // one syncfs(2) of the registry's file system
	flushEach                        // fsync of each file, one after the other, after all are written
	flushOneByOne                    // fsync of each file as it is written (what Put does)
)

var flushWith = flushAuto

// staged is a temp file PutAll wrote for a node, not yet renamed.
type staged struct {
	name, tmp string
	res       int    // the index of the result it decides (the name's last change)
	data      []byte // its content until written: a later put of the name compares with it
	fresh     []byte // its content, for Store.fresh
}

// putBatch writes the temp files of the nodes that change, flushes them
// once, renames them into place, and fills res as Put would have, one
// after the other.
func (s *Store) putBatch(nodes []Node, res []PutResult) {
	// Opened before anything is written: syncFS reports the writeback
	// errors met since.
	d, err := os.Open(s.dir)
	if err != nil {
		for i := range res {
			res[i].Err = err
		}
		return
	}
	defer d.Close()
	oneByOne := flushWith == flushOneByOne || flushWith == flushAuto && len(nodes) < batchSyncMin
	// last is the index of each name's last put: with a name put twice,
	// only the content of its last change is written, after its last put.
	last := make(map[string]int, len(nodes))
	dup := false
	for i, n := range nodes {
		if _, ok := last[n.Name]; ok {
			dup = true
		}
		last[n.Name] = i
	}
	// A start-up batch registers nodes that mostly have no file yet: one
	// listing of the directory spares an open per node to find that out.
	var present map[string]bool
	if len(nodes) >= batchSyncMin {
		if names, err := d.Readdirnames(-1); err == nil {
			present = make(map[string]bool, len(names))
			for _, n := range names {
				present[n] = true
			}
		}
	}
	pending := make(map[string]*staged)
	var files []*staged
	defer func() {
		for _, f := range files {
			if f.tmp != "" {
				os.Remove(filepath.Join(s.dir, f.tmp))
			}
		}
	}()
	var buf []byte
	for i, n := range nodes {
		r := &res[i]
		p, data, err := s.prepare(n)
		if err != nil {
			r.Err = err
			continue
		}
		var old []byte
		prev := pending[n.Name]
		if prev != nil {
			old, r.Existed = prev.data, true
		} else if present == nil || present[n.Name] {
			old, _, err = readFile(-1, n.Name, p, buf)
			if err == nil {
				buf, r.Existed = old, true
			}
		}
		if r.Existed && string(old) == string(data) {
			continue
		}
		r.Changed = true
		f := prev
		if f == nil {
			f = &staged{name: n.Name}
			pending[n.Name] = f
			files = append(files, f)
		}
		f.res, f.data = i, data
		if !dup || last[n.Name] == i {
			s.writeStaged(f, res, oneByOne)
		}
	}
	// A name whose last put was identical to an earlier one's, or failed,
	// still gets the content of its last change.
	for _, f := range files {
		if f.data != nil {
			s.writeStaged(f, res, oneByOne)
		}
	}
	if err := flush(d, files, oneByOne); err != nil {
		for _, f := range files {
			if f.tmp != "" {
				res[f.res].Err = err
			}
		}
		return
	}
	for _, f := range files {
		if f.tmp == "" {
			continue
		}
		if err := os.Rename(filepath.Join(s.dir, f.tmp), filepath.Join(s.dir, f.name)); err != nil {
			res[f.res].Err = err
			continue
		}
		f.tmp = ""
		s.unsynced.Store(true)
		if s.lockFile != nil {
			if s.fresh == nil {
				s.fresh = make(map[string][]byte, len(files))
			}
			s.fresh[f.name] = f.fresh
		}
	}
}

// writeStaged writes f's temp file and lets go of its content.
func (s *Store) writeStaged(f *staged, res []PutResult, sync bool) {
	var err error
	f.tmp, err = writeTemp(f.name, filepath.Join(s.dir, f.name), f.data, sync)
	f.data, f.fresh = nil, f.data
	if err != nil {
		res[f.res].Changed, res[f.res].Err = false, err
	}
}

// prepare validates n and returns its node file's path and content.
func (s *Store) prepare(n Node) (p string, data []byte, err error) {
	if p, err = s.path(n.Name); err != nil {
		return "", nil, err
	}
	if !n.Addr.IsValid() {
		return "", nil, fmt.Errorf("node %q: no address", n.Name)
	}
	if n.Addr.Zone() != "" {
		return "", nil, fmt.Errorf("node %q: address %s has a zone", n.Name, n.Addr)
	}
	if data, err = encode(n); err != nil {
		return "", nil, fmt.Errorf("encode node %q: %v", n.Name, err)
	}
	return p, data, nil
}

// writeTemp writes data to a new temp file for the node file name (at p)
// in its directory, with the node file's mode whatever the umask,
// and returns the temp file's name. With sync it is fsynced too. The name
// has the shape isTemp knows, so that a run dying before the rename
// leaves nothing List keeps.
func writeTemp(name, p string, data []byte, sync bool) (string, error) {
	dir := filepath.Dir(p)
	const flags = syscall.O_WRONLY | syscall.O_CREAT | syscall.O_EXCL | syscall.O_NOFOLLOW | syscall.O_CLOEXEC
	var (
		tmp string
		fd  int
		err error
	)
	for range 100 { // a name taken is a temp file of a run that died; try another
		tmp = "." + name + strconv.FormatUint(uint64(rand.Uint32()), 10)
		err = ignoringEINTR(func() (err error) { fd, err = syscall.Open(filepath.Join(dir, tmp), flags, 0o644); return err })
		if err != syscall.EEXIST {
			break
		}
	}
	if err != nil {
		return "", &os.PathError{Op: "create", Path: p, Err: err}
	}
	fail := func(op string, err error) (string, error) {
		syscall.Close(fd)
		syscall.Unlink(filepath.Join(dir, tmp))
		return "", &os.PathError{Op: op, Path: filepath.Join(dir, tmp), Err: err}
	}
	if err := syscall.Fchmod(fd, 0o644); err != nil {
		return fail("chmod", err)
	}
	for b := data; len(b) > 0; {
		n, err := syscall.Write(fd, b)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return fail("write", err)
		}
		b = b[n:]
	}
	if sync {
		if err := ignoringEINTR(func() error { return syscall.Fsync(fd) }); err != nil {
			return fail("sync", err)
		}
	}
	if err := syscall.Close(fd); err != nil {
		return fail("close", err)
	}
	return tmp, nil
}

// flush makes the written temp files' data durable, by flushWith.
func flush(d *os.File, files []*staged, synced bool) error {
	dir := d.Name()
	n := 0
	for _, f := range files {
		if f.tmp != "" {
			n++
		}
	}
	m := flushWith
	if m == flushAuto {
		m = flushEach
		if n >= batchSyncMin && syncFSSupported {
			m = flushSyncFS
		}
	}
	switch {
	case n == 0 || synced:
		return nil
	case m == flushSyncFS && syncFSSupported:
		if err := syncFS(d); err != nil {
			return fmt.Errorf("sync file system of %s: %v", dir, err)
		}
		return nil
	}
	for _, f := range files {
		if f.tmp == "" {
			continue
		}
		if err := fsyncFile(filepath.Join(dir, f.tmp)); err != nil {
			return fmt.Errorf("sync %s: %v", filepath.Join(dir, f.tmp), err)
		}
	}
	return nil
}

// fsyncFile fsyncs the file p.
func fsyncFile(p string) error {
	var fd int
	err := ignoringEINTR(func() (err error) {
		fd, err = syscall.Open(p, syscall.O_RDONLY|syscall.O_CLOEXEC|syscall.O_NOFOLLOW, 0)
		return err
	})
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	return ignoringEINTR(func() error { return syscall.Fsync(fd) })
}
