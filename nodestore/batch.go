package nodestore

// PutAll's durability, paid once per batch. A start-up event carries every
// member Serf knows (10,000 at a time), and one fsync per node file cost
// 1.8-7.7 s there, for what one flush of the file system does in one go.
// Measured on ext4 (BenchmarkPutAll, 10,000 new files, same run): sixteen
// Puts at a time with their fsyncs 3.1 s; all written, then an fsync of
// each 4.1 s; all written, then one syncfs 2.3 s. Creating the files is
// most of what is left (about 100 us each on that disk, with no write or
// sync at all).
//
// The order is the one that keeps Put's guarantee, a node file is the old
// one or the new one after a crash, never a part: every temp file is
// written, then their data is made durable (flush), and only then are
// they renamed over the node files; the renames are made durable by the
// directory's fsync (Sync), as for Put. A crash before the flush leaves
// temp files that the next List under the lock removes; a crash between
// the flush and Sync leaves each node file old or new, both whole.

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
	data      []byte // its content until written
	fresh     []byte // its content, for a later put of the name and Store.fresh
	renamed   bool
}

// Staged is a PutAll halfway (StageAll): the temp files of the nodes that
// change are written, each result is known, nothing is in place yet.
type Staged struct {
	s     *Store
	d     *os.File // the registry directory, opened before anything was written
	files []*staged
	res   []PutResult
	// synced: the temp files were fsynced as they were written.
	synced bool
	done   bool
}

// StageAll is the first half of PutAll(nodes): it writes the temp files
// of the nodes that change, and returns them staged with the results
// Commit will give unless making them durable or renaming them fails.
// Nothing is fsynced and the registry is unchanged until Commit, so that
// a caller can act on the results while Commit runs (a run works out a
// joining member's server while its node file is made durable). The
// caller holds the lock until it has called Commit or Discard.
func (s *Store) StageAll(nodes []Node) *Staged {
	return s.stage(nodes, false)
}

// Results returns the results Commit gives unless it fails, a copy that
// Commit, running beside the caller, leaves alone.
func (b *Staged) Results() []PutResult { return slices.Clone(b.res) }

// stage writes the temp files of the nodes that change; with syncEach
// (below batchSyncMin nodes, as PutAll does) each is fsynced as it is
// written, else Commit flushes them.
func (s *Store) stage(nodes []Node, syncEach bool) *Staged {
	b := &Staged{s: s, res: make([]PutResult, len(nodes)), synced: syncEach}
	// Opened before anything is written: syncFS reports the writeback
	// errors met since.
	d, err := os.Open(s.dir)
	if err != nil {
		for i := range b.res {
			b.res[i].Err = err
		}
		b.done = true
		return b
	}
	b.d = d
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
	if names := make(map[string]bool, len(nodes)); !slices.ContainsFunc(nodes, func(n Node) bool {
		dup := names[n.Name]
		names[n.Name] = true
		return dup
	}) {
		b.files = s.stageEach(nodes, b.res, present, syncEach)
	} else {
		b.files = s.stageInOrder(nodes, b.res, present, syncEach)
	}
	return b
}

// Commit makes the staged temp files durable (flush), renames them over
// the node files, and returns each node's result as PutAll would. The
// renames are durable after Sync. A second call returns the same results.
func (b *Staged) Commit() []PutResult {
	if b.done {
		return b.res
	}
	defer b.Discard()
	if err := flush(b.d, b.files, b.synced); err != nil {
		for _, f := range b.files {
			if f.tmp != "" {
				b.res[f.res].Changed, b.res[f.res].Err = false, err
			}
		}
		return b.res
	}
	s := b.s
	concurrently(len(b.files), func(i int) {
		f := b.files[i]
		if f.tmp == "" {
			return
		}
		if err := os.Rename(filepath.Join(s.dir, f.tmp), filepath.Join(s.dir, f.name)); err != nil {
			b.res[f.res].Changed, b.res[f.res].Err = false, err
			return
		}
		f.tmp, f.renamed = "", true
	})
	for _, f := range b.files {
		if !f.renamed {
			continue
		}
		s.unsynced.Store(true)
		if s.lockFile != nil {
			if s.fresh == nil {
				s.fresh = make(map[string][]byte, len(b.files))
			}
			s.fresh[f.name] = f.fresh
		}
	}
	return b.res
}

// Discard removes the temp files not renamed into place: after Commit,
// those whose rename failed; before it, all of them, which leaves the
// registry as it was. The results then say nothing changed.
func (b *Staged) Discard() {
	if b.done {
		return
	}
	b.done = true
	for _, f := range b.files {
		if f.tmp != "" {
			os.Remove(filepath.Join(b.s.dir, f.tmp))
			f.tmp = ""
			if !f.renamed && b.res[f.res].Err == nil {
				b.res[f.res].Changed = false
			}
		}
	}
	b.d.Close()
}

// maxBatchWorkers bounds the files PutAll writes or renames at once. Each
// is a journalled metadata change, which on a busy file system can wait
// for the journal's commit; several at once share that wait (measured:
// 10,000 new files in 3.1 s with sixteen at a time, 7.2 s one after the
// other, on a loaded ext4).
const maxBatchWorkers = 16

// concurrently calls f(0..n-1), several at a time.
func concurrently(n int, f func(i int)) {
	var next atomic.Int64
	work := func() {
		for {
			i := int(next.Add(1)) - 1
			if i >= n {
				return
			}
			f(i)
		}
	}
	var wg sync.WaitGroup
	for range min(n, maxBatchWorkers) - 1 {
		wg.Go(work)
	}
	work()
	wg.Wait()
}

// stageEach writes the temp file of each node that changes, several at a
// time: no name repeats. It returns the files written.
func (s *Store) stageEach(nodes []Node, res []PutResult, present map[string]bool, sync bool) []*staged {
	all := make([]*staged, len(nodes))
	concurrently(len(nodes), func(i int) {
		n, r := nodes[i], &res[i]
		p, data, err := s.prepare(n)
		if err != nil {
			r.Err = err
			return
		}
		if present == nil || present[n.Name] {
			old, _, err := readFile(-1, n.Name, p, nil)
			if r.Existed = err == nil; r.Existed && bytes.Equal(old, data) {
				return
			}
		}
		f := &staged{name: n.Name, res: i, data: data}
		r.Changed = true
		s.writeStaged(f, res, sync)
		all[i] = f
	})
	return slices.DeleteFunc(all, func(f *staged) bool { return f == nil })
}

// stageInOrder writes the temp files of the nodes that change, one after
// the other: a name put twice ends with its last change, and each put
// compares with the one before. It returns the files written.
func (s *Store) stageInOrder(nodes []Node, res []PutResult, present map[string]bool, sync bool) []*staged {
	last := make(map[string]int, len(nodes))
	for i, n := range nodes {
		last[n.Name] = i
	}
	pending := make(map[string]*staged)
	var files []*staged
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
			old, r.Existed = prev.fresh, true
		} else if present == nil || present[n.Name] {
			old, _, err = readFile(-1, n.Name, p, nil)
			r.Existed = err == nil
		}
		if r.Existed && bytes.Equal(old, data) {
			continue
		}
		r.Changed = true
		f := prev
		if f == nil {
			f = &staged{name: n.Name}
			pending[n.Name] = f
			files = append(files, f)
		} else if f.tmp != "" {
			os.Remove(filepath.Join(s.dir, f.tmp))
			f.tmp = ""
		}
		f.res, f.data, f.fresh = i, data, data
		if last[n.Name] == i {
			s.writeStaged(f, res, sync)
		}
	}
	// A name whose last put was identical to an earlier one's, or failed,
	// still gets the content of its last change.
	for _, f := range files {
		if f.data != nil {
			s.writeStaged(f, res, sync)
		}
	}
	return files
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
	if umaskStrips() {
		if err := syscall.Fchmod(fd, 0o644); err != nil {
			return fail("chmod", err)
		}
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

// umaskStrips reports whether the process's umask takes bits off a node
// file's mode 0644, so that writeTemp must set it again: a system call per
// file of a batch spared under the usual umask (022). Linux says the umask
// in /proc/self/status (since 4.7); anything unreadable there means yes.
var umaskStrips = sync.OnceValue(func() bool {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return true
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Umask:"); ok {
			m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32)
			return err != nil || m&0o644 != 0
		}
	}
	return true
})

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
		if n >= batchSyncMin && syncFSSupported() {
			m = flushSyncFS
		}
	}
	switch {
	case n == 0 || synced:
		return nil
	case m == flushSyncFS && syncFSSupported():
		if err := syncFS(d); err != nil {
			return fmt.Errorf("sync file system of %s: %v", dir, err)
		}
		return nil
	}
	if n < batchSyncMin {
		// A few files staged by StageAll: their fsyncs at once, as
		// PutAll's one-by-one writes would have done them.
		errs := make([]error, len(files))
		concurrently(len(files), func(i int) { errs[i] = fsyncTemp(dir, files[i]) })
		return errors.Join(errs...)
	}
	for _, f := range files {
		if err := fsyncTemp(dir, f); err != nil {
			return err
		}
	}
	return nil
}

// fsyncTemp fsyncs f's temp file, if it has one.
func fsyncTemp(dir string, f *staged) error {
	if f.tmp == "" {
		return nil
	}
	if err := fsyncFile(filepath.Join(dir, f.tmp)); err != nil {
		return fmt.Errorf("sync %s: %v", filepath.Join(dir, f.tmp), err)
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
