// Package nodestore keeps the registry of load-balanced nodes: a directory
// holding one file per node.
//
// Invariants:
//   - Callers hold the lock (Store.Lock) across every read-modify-write.
//   - Node files are replaced atomically (temp file, fsync, rename): a reader
//     sees the old or the new file, never a part. The directory's fsync,
//     which makes renames and removals survive a crash, is Sync's: one for
//     all of an event's changes.
//   - Names starting with a dot are reserved for the store itself (the lock
//     file, which also keeps the flags; the index; temp files) and are
//     ignored by List.
//   - A node name can never address a path outside the directory: Put and
//     Remove refuse any name that ValidName rejects.
//
// A node file's first line is "NAME ADDR", the layout the lab's shell scripts
// wrote, so their registries are read as they are. serf-hb adds a second line
// with the role and tags as JSON.
package nodestore

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rogpeppe/go-internal/lockedfile"
)

// MaxNameLen is the longest node name the store accepts, in bytes. A node
// file is staged as "." + name + up to 20 random digits, and that must fit
// the 255-byte file name limit of common file systems.
const MaxNameLen = 234

// maxFileSize bounds how much of a node file is read: Serf's tags fit in
// 512 bytes, so anything near this is not a node file.
const maxFileSize = 64 << 10

// Node is one registered member.
type Node struct {
	Name string            `json:"name"`
	Addr netip.Addr        `json:"addr"`
	Role string            `json:"role,omitempty"`
	Tags map[string]string `json:"tags,omitempty"`
}

// meta is the optional second line of a node file.
type meta struct {
	Role string            `json:"role,omitempty"`
	Tags map[string]string `json:"tags,omitempty"`
}

// Store is a registry directory.
type Store struct {
	dir string
	// lockFile is the lock file while this process holds the lock (Lock);
	// it keeps the flags.
	lockFile *lockedfile.File
	unsynced atomic.Bool      // renames or removals not yet fsynced (Sync)
	now      func() time.Time // the clock that dates index entries (tests)
}

// Open returns the store in dir, creating the directory (mode 0755) when it
// does not exist yet.
func Open(dir string) (*Store, error) {
	if dir == "" {
		return nil, errors.New("open registry: no directory given")
	}
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, err
	case !fi.IsDir():
		return nil, fmt.Errorf("open registry %s: not a directory", dir)
	}
	return &Store{dir: dir}, nil
}

// Dir returns the registry directory.
func (s *Store) Dir() string { return s.dir }

// ValidName reports why name cannot be a node name, or nil when it can.
// Accepted names use only the characters HAProxy allows in a server name
// ([A-Za-z0-9_.:-]), do not start with a dot and are at most MaxNameLen
// bytes long; such a name is always a plain file name inside the registry.
func ValidName(name string) error {
	switch {
	case name == "":
		return errors.New("empty name")
	case len(name) > MaxNameLen:
		return fmt.Errorf("name is %d bytes long, the limit is %d", len(name), MaxNameLen)
	case name[0] == '.':
		return errors.New("name starts with a dot")
	}
	for i, r := range name {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '_' || r == '.' || r == ':' || r == '-') {
			return fmt.Errorf("character %q at byte %d is not allowed (only A-Z a-z 0-9 _ . : - are, as in HAProxy server names)", r, i)
		}
	}
	return nil
}

func (s *Store) path(name string) (string, error) {
	if err := ValidName(name); err != nil {
		return "", fmt.Errorf("node %q: %w", name, err)
	}
	return filepath.Join(s.dir, name), nil
}

// encode renders n in the node file format.
func encode(n Node) ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s\n", n.Name, n.Addr)
	m, err := json.Marshal(meta{Role: n.Role, Tags: n.Tags})
	if err != nil {
		return nil, err
	}
	b.Write(m)
	b.WriteByte('\n')
	return b.Bytes(), nil
}

// decode parses a node file named name.
func decode(name string, data []byte) (Node, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return Node{}, errors.New("file is empty")
	}
	first, rest, _ := bytes.Cut(data, []byte("\n"))
	fields := strings.Fields(string(first))
	if len(fields) != 2 {
		return Node{}, fmt.Errorf("first line %q is not \"NAME ADDR\"", first)
	}
	if fields[0] != name {
		return Node{}, fmt.Errorf("file names node %q", fields[0])
	}
	addr, err := netip.ParseAddr(fields[1])
	if err != nil {
		return Node{}, fmt.Errorf("address: %v", err)
	}
	// A zone ("fe80::1%eth0") is no address HAProxy resolves: rendered,
	// it would fail the check, and with it every later run.
	if addr.Zone() != "" {
		return Node{}, fmt.Errorf("address %s has a zone", addr)
	}
	n := Node{Name: name, Addr: addr}
	if rest = bytes.TrimSpace(rest); len(rest) > 0 {
		m, err := decodeMeta(rest)
		if err != nil {
			return Node{}, fmt.Errorf("second line: %v", err)
		}
		n.Role, n.Tags = m.Role, m.Tags
	}
	return n, nil
}

// Put registers n, replacing any earlier entry of the same name. It reports
// whether the file changed (an identical entry is left untouched) and
// whether there was an entry before. The change is durable after Sync.
func (s *Store) Put(n Node) (changed, existed bool, err error) {
	p, err := s.path(n.Name)
	if err != nil {
		return false, false, err
	}
	if !n.Addr.IsValid() {
		return false, false, fmt.Errorf("node %q: no address", n.Name)
	}
	if n.Addr.Zone() != "" {
		return false, false, fmt.Errorf("node %q: address %s has a zone", n.Name, n.Addr)
	}
	data, err := encode(n)
	if err != nil {
		return false, false, fmt.Errorf("encode node %q: %v", n.Name, err)
	}
	old, _, err := readFile(-1, n.Name, p, nil)
	existed = err == nil
	if existed && bytes.Equal(old, data) {
		return false, true, nil
	}
	if err := writeAtomic(s.dir, p, data); err != nil {
		return false, existed, err
	}
	s.unsynced.Store(true)
	return true, existed, nil
}

// PutResult is what Put reported for one node of PutAll.
type PutResult struct {
	Changed, Existed bool
	Err              error
}

// maxPutWorkers bounds PutAll's concurrency.
const maxPutWorkers = 16

// PutAll puts every node as Put does, several at a time (one at a time if
// a name repeats), and returns each one's result in order. An event can
// carry hundreds of members (Serf coalesces joins), and each node file is
// fsynced before its rename: concurrent fsyncs share a journal commit on
// ext4 and XFS, where one after the other each waits for its own.
func (s *Store) PutAll(nodes []Node) []PutResult {
	res := make([]PutResult, len(nodes))
	var next atomic.Int64
	work := func() {
		for {
			i := int(next.Add(1)) - 1
			if i >= len(nodes) {
				return
			}
			r := &res[i]
			r.Changed, r.Existed, r.Err = s.Put(nodes[i])
		}
	}
	workers := min(len(nodes), maxPutWorkers)
	// A name given twice is put in order, as Put calls one after the
	// other would, so that the last one wins.
	seen := make(map[string]bool, len(nodes))
	for _, n := range nodes {
		if seen[n.Name] {
			workers = 1
			break
		}
		seen[n.Name] = true
	}
	var wg sync.WaitGroup
	for range workers - 1 {
		wg.Go(work)
	}
	work()
	wg.Wait()
	return res
}

// Sync makes the registry's renames and removals since the last Sync
// survive a crash: one fsync of the directory, if anything changed.
func (s *Store) Sync() error {
	if !s.unsynced.Swap(false) {
		return nil
	}
	if err := syncDir(s.dir); err != nil {
		s.unsynced.Store(true)
		return err
	}
	return nil
}

// Remove unregisters the node called name. Removing a node that is not
// registered is not an error; removed reports whether there was one. The
// removal is durable after Sync.
func (s *Store) Remove(name string) (removed bool, err error) {
	p, err := s.path(name)
	if err != nil {
		return false, err
	}
	fi, err := os.Lstat(p)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if fi.IsDir() {
		return false, fmt.Errorf("remove node %s: is a directory", p)
	}
	if err := os.Remove(p); err != nil {
		return false, err
	}
	s.unsynced.Store(true)
	return true, nil
}

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

// notRegularError is a node file that is no regular file.
type notRegularError struct {
	p    string
	kind fileKind
}

func (e *notRegularError) Error() string { return fmt.Sprintf("read %s: a %s", e.p, e.kind) }

// readFile returns the content of the node file name in the directory open
// as dirfd (or, with dirfd negative, of the file p; p names the file in
// errors), read into buf (which may be nil) and at most maxFileSize bytes
// long, and its index key. Anything but a regular file is a
// *notRegularError. It makes the system calls
// itself: os.Open's set-up of a File (poller registration, two fcntl calls
// each way) cost more than reading a node file, List reads one file per
// node, and a buffer reused across a List spares an allocation per node.
func readFile(dirfd int, name, p string, buf []byte) ([]byte, fileKey, error) {
	fd, err := openNode(dirfd, name, p)
	if err == syscall.ELOOP {
		return nil, fileKey{}, &notRegularError{p: p, kind: kindSymlink}
	}
	if err != nil {
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
		return nil, fileKey{}, &notRegularError{p: p, kind: kind}
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
			return nil, fileKey{}, fmt.Errorf("read %s: larger than %d bytes", p, maxFileSize)
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
