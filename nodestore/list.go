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

// List returns every registered node, sorted by name. Any entry that is not
// a readable node file (an empty or garbled file, a directory, a name that
// ValidName rejects) makes List fail with an error naming it (in name
// order): rendering without it would silently drop a server.
//
// Node files unchanged since a run cached them are served from the index
// (index.go). A caller holding the lock also gets the index brought up to
// date and the temp files of runs that died removed.
func (s *Store) List() ([]Node, error) {
	d, err := os.Open(s.dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	// Names only (the stat or open of each entry tells what it is),
	// sorted: the nodes come out in order, and the index is walked
	// alongside.
	entries, err := d.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	sort.Strings(entries)
	dirfd := int(d.Fd())
	var idx []indexRecord
	if indexSupported {
		idx = s.readIndex()
	}
	// Only a List under the lock writes the index, so only it keeps the
	// bytes of files read afresh for it.
	keep := indexSupported && s.lockFile != nil
	now := time.Now() // before any stat: see cacheable
	if s.now != nil {
		now = s.now()
	}
	// A registry is read one file per node, and reading is mostly system
	// calls: with thousands of nodes a few goroutines read at once, each
	// taking the next chunk of entries, and every result lands in its
	// entry's slot.
	slots := make([]listSlot, len(entries))
	workers := min(runtime.GOMAXPROCS(0), maxListWorkers, (len(entries)+listChunk-1)/listChunk)
	var next atomic.Int64
	work := func() {
		var buf []byte // decode copies what it keeps, so one buffer serves all files
		for {
			lo := int(next.Add(listChunk)) - listChunk
			if lo >= len(entries) {
				return
			}
			cur := indexCursor{recs: idx}
			cur.seek(entries[lo])
			for i := lo; i < min(lo+listChunk, len(entries)); i++ {
				buf = s.readEntry(dirfd, entries[i], &slots[i], buf, cur.find(entries[i]), keep, now)
			}
		}
	}
	var wg sync.WaitGroup
	for range workers - 1 {
		wg.Go(work)
	}
	work()
	wg.Wait()

	nodes := make([]Node, 0, len(entries))
	var (
		bad         []int // slots holding errors
		names       []string
		cached      []indexEntry
		hits, fresh int
	)
	for i, sl := range slots {
		switch {
		case sl.err != nil:
			bad = append(bad, i)
		case sl.ok:
			nodes = append(nodes, sl.node)
			if sl.cache.data != nil {
				names = append(names, entries[i])
				cached = append(cached, sl.cache)
				if sl.hit {
					hits++
				} else {
					fresh++
				}
			}
		}
	}
	if s.lockFile != nil {
		for i, sl := range slots {
			if sl.temp {
				s.removeTemp(entries[i])
			}
		}
		// Rewritten when entries joined or left it; an error only costs
		// the next List the reads the index would have saved.
		if indexSupported && len(bad) == 0 && (fresh > 0 || hits != len(idx)) {
			s.writeIndex(names, cached)
		}
	}
	if len(bad) > 0 {
		errs := make([]error, len(bad))
		for i, b := range bad {
			errs[i] = slots[b].err
		}
		return nil, errors.Join(errs...)
	}
	return nodes, nil
}

// maxListWorkers and listChunk size List's fan-out: at most this many
// goroutines (and no more than GOMAXPROCS), each taking listChunk entries
// at a time, so that a registry of one chunk is read by the caller alone.
const (
	maxListWorkers = 4
	listChunk      = 256
)

// listSlot is what List found at one directory entry: a node, an error,
// a temp file, or nothing (another dotfile, a file removed meanwhile).
type listSlot struct {
	node  Node
	ok    bool
	err   error
	temp  bool
	cache indexEntry // the entry for the next index; no data: none
	hit   bool       // the node came from the index
}

// readEntry reads the directory entry name into sl, from its index entry c
// (nil: none) when the file is unchanged since it was cached, using buf as
// its read buffer, and returns the buffer for the next call. dirfd is the
// registry directory, open; with keep, a file read afresh keeps a copy of
// its bytes for the next index if it is old enough (now is when List
// started).
func (s *Store) readEntry(dirfd int, name string, sl *listSlot, buf []byte, c *indexEntry, keep bool, now time.Time) []byte {
	if strings.HasPrefix(name, ".") {
		sl.temp = isTemp(name)
		return buf
	}
	p := filepath.Join(s.dir, name)
	if err := ValidName(name); err != nil {
		sl.err = fmt.Errorf("registry entry %s: %v", p, err)
		return buf
	}
	var (
		data []byte
		err  error
	)
	if c != nil {
		key, kind, err := statAt(dirfd, name, p)
		if errors.Is(err, os.ErrNotExist) {
			return buf // removed since ReadDir by someone not holding the lock
		}
		if err == nil && kind == kindRegular && key == c.key {
			data, sl.cache, sl.hit = c.data, *c, true
		}
	}
	if !sl.hit {
		var key fileKey
		data, key, err = readFile(dirfd, name, p, buf)
		var nr *notRegularError
		switch {
		case errors.Is(err, os.ErrNotExist):
			return buf
		case errors.As(err, &nr) && nr.kind == kindDir:
			sl.err = fmt.Errorf("registry entry %s: is a directory, not a node file; hint: move it out of the registry", p)
			return buf
		case errors.As(err, &nr):
			sl.err = fmt.Errorf("registry entry %s: not a regular file (%s)", p, nr.kind)
			return buf
		case err != nil:
			sl.err = err
			return buf
		}
		buf = data
		if keep && cacheable(key, now) {
			sl.cache = indexEntry{key: key, data: bytes.Clone(data)}
		}
	}
	n, err := decode(name, data)
	if err != nil {
		sl.err = fmt.Errorf("registry entry %s: %v", p, err)
		return buf
	}
	sl.node, sl.ok = n, true
	return buf
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
