package nodestore

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// List returns the registered nodes, sorted by name, and the entries that
// are not node files (bad), also sorted by name: a file such as "README"
// or "web1~" left in the directory, a directory, a symlink, a file that is
// garbled or cannot be read (EntryError says which). Dotfiles are the
// store's own and are neither. The caller decides what bad entries mean:
// rendering without them may leave out a server that one was meant to be.
//
// err is a failure of the registry as a whole (the directory cannot be
// read, the process is out of file descriptors): then there are neither
// nodes nor bad entries, as no entry can be told to be either.
//
// Node files unchanged since a run cached them are served from the index
// (index.go). A caller holding the lock also gets the index brought up to
// date and the temp files of runs that died removed.
func (s *Store) List() (nodes []Node, bad []*EntryError, err error) {
	d, err := os.Open(s.dir)
	if err != nil {
		return nil, nil, err
	}
	defer d.Close()
	// Names only (the stat or open of each entry tells what it is),
	// sorted: the nodes come out in order, and the index is walked
	// alongside.
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, nil, err
	}
	sort.Strings(names)
	l := s.newListing(int(d.Fd()), names)
	l.readAll()
	nodes, bad, err = l.result()
	if s.lockFile != nil {
		l.tidy(err == nil)
	}
	return nodes, bad, err
}

// listing is one List: the registry's entries, what it found at each, and
// what it reads them with.
type listing struct {
	s     *Store
	dirfd int           // the registry directory, open
	names []string      // its entries, sorted
	slots []listSlot    // what List found at each entry, by index
	idx   []indexRecord // the index as read, sorted by name
	// keep: a file read afresh keeps a copy of its bytes for the next
	// index, if it is old enough at now, when List started (cacheable).
	keep bool
	now  time.Time
}

// listSlot is what List found at one directory entry: a node, a bad
// entry, an error that fails the List, a temp file, or nothing (another
// dotfile, a file removed meanwhile).
type listSlot struct {
	node  Node
	ok    bool
	bad   *EntryError
	err   error
	temp  bool
	cache indexEntry // the entry for the next index; no data: none
	hit   bool       // the node came from the index
}

func (s *Store) newListing(dirfd int, names []string) *listing {
	l := &listing{s: s, dirfd: dirfd, names: names, slots: make([]listSlot, len(names))}
	if indexSupported {
		l.idx = s.readIndex()
		// Only a List under the lock writes the index, so only it keeps
		// the bytes of files read afresh for it.
		l.keep = s.lockFile != nil
	}
	l.now = time.Now() // before any stat: see cacheable
	if s.now != nil {
		l.now = s.now()
	}
	return l
}

// maxListWorkers and listChunk size List's fan-out: at most this many
// goroutines (and no more than GOMAXPROCS), each taking listChunk entries
// at a time, so that a registry of one chunk is read by the caller alone.
const (
	maxListWorkers = 4
	listChunk      = 256
)

// readAll fills every slot. A registry is read one file per node, and
// reading is mostly system calls: with thousands of nodes a few goroutines
// read at once, each taking the next chunk of entries, and every result
// lands in its entry's slot.
func (l *listing) readAll() {
	workers := min(runtime.GOMAXPROCS(0), maxListWorkers, (len(l.names)+listChunk-1)/listChunk)
	var next atomic.Int64
	work := func() {
		r := listReader{listing: l}
		for {
			lo := int(next.Add(listChunk)) - listChunk
			if lo >= len(l.names) {
				return
			}
			r.cur = indexCursor{recs: l.idx}
			r.cur.seek(l.names[lo])
			for i := lo; i < min(lo+listChunk, len(l.names)); i++ {
				r.read(l.names[i], &l.slots[i])
			}
		}
	}
	var wg sync.WaitGroup
	for range workers - 1 {
		wg.Go(work)
	}
	work()
	wg.Wait()
}

// listReader is one of readAll's goroutines.
type listReader struct {
	*listing
	buf []byte      // decode copies what it keeps, so one buffer serves all files
	cur indexCursor // within the chunk being read
	in  interner    // the strings of the nodes it decodes
}

// read fills sl with what is at the directory entry name.
func (r *listReader) read(name string, sl *listSlot) {
	if strings.HasPrefix(name, ".") {
		sl.temp = isTemp(name)
		return
	}
	p := filepath.Join(r.s.dir, name)
	if err := ValidName(name); err != nil {
		sl.bad = &EntryError{Path: p, Err: fmt.Errorf("not a node name: %v", err)}
		return
	}
	data, err := r.content(name, p, sl)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return // removed since the directory was read, by someone not holding the lock
	case err != nil:
		sl.bad, sl.err = entryError(p, err)
		return
	}
	n, err := decodeWith(name, data, &r.in)
	if err != nil {
		sl.bad = &EntryError{Path: p, Err: err}
		return
	}
	sl.node, sl.ok = n, true
}

// content returns the bytes of the node file name (at p): its index
// entry's while the file is unchanged since the entry was made (sl.hit),
// else the file's, read into r.buf. sl.cache gets the file's entry for the
// next index, if it is to have one.
func (r *listReader) content(name, p string, sl *listSlot) ([]byte, error) {
	// A file this process wrote under the lock it still holds is what it
	// wrote, unless someone ignoring the lock changed it since, which is
	// no different from their change landing just after this List. It
	// stays out of the index: it is too new to be cached (cacheable).
	if data, ok := r.s.fresh[name]; ok && r.s.lockFile != nil {
		return data, nil
	}
	if c := r.cur.find(name); c != nil {
		key, kind, err := statAt(r.dirfd, name, p)
		if err == nil && kind == kindRegular && key == c.key {
			sl.cache, sl.hit = *c, true
			return c.data, nil
		}
	}
	data, key, err := readFile(r.dirfd, name, p, r.buf)
	if err != nil {
		return nil, err
	}
	r.buf = data
	if r.keep && cacheable(key, r.now) {
		sl.cache = indexEntry{key: key, data: bytes.Clone(data)}
	}
	return data, nil
}

// result returns the nodes and the bad entries found, in name order, or
// the errors that fail the List, joined in name order.
func (l *listing) result() ([]Node, []*EntryError, error) {
	nodes := make([]Node, 0, len(l.slots))
	var (
		bad  []*EntryError
		errs []error
	)
	for i := range l.slots {
		switch sl := &l.slots[i]; {
		case sl.err != nil:
			errs = append(errs, sl.err)
		case sl.bad != nil:
			bad = append(bad, sl.bad)
		case sl.ok:
			nodes = append(nodes, sl.node)
		}
	}
	if len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	return nodes, bad, nil
}

// tidy does what only a List under the lock may: it removes the temp
// files of runs that died, and, with writeIndex, brings the index up to
// date. Bad entries do not hold the index back: it only ever holds node
// files that decoded, and a bad entry is read afresh by every List.
func (l *listing) tidy(writeIndex bool) {
	for i := range l.slots {
		if l.slots[i].temp {
			l.s.removeTemp(l.names[i])
		}
	}
	if !indexSupported || !writeIndex {
		return
	}
	// An error only costs the next List the reads the index would have
	// saved.
	if names, entries, changed := l.nextIndex(); changed {
		l.s.writeIndex(names, entries)
	}
}

// nextIndex returns the index of the node files found, as writeIndex
// takes it, and whether it differs from the index read.
func (l *listing) nextIndex() (names []string, entries []indexEntry, changed bool) {
	hits := 0
	for i := range l.slots {
		sl := &l.slots[i]
		if !sl.ok || sl.cache.data == nil {
			continue
		}
		names = append(names, l.names[i])
		entries = append(entries, sl.cache)
		if sl.hit {
			hits++
		} else {
			changed = true
		}
	}
	return names, entries, changed || hits != len(l.idx)
}

// removeTemp removes the entry name if it is a regular file: one of
// renameio's temp files for node files (isTemp), seen by List. Every writer
// holds the lock, so while we hold it any such file belongs to a run that
// died.
func (s *Store) removeTemp(name string) {
	p := filepath.Join(s.dir, name)
	if fi, err := os.Lstat(p); err == nil && fi.Mode().IsRegular() {
		os.Remove(p)
	}
}
