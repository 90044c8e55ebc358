// Package nodestore keeps the registry of load-balanced nodes: a directory
// holding one file per node.
//
// Invariants:
//   - Callers hold the lock (Store.Lock) across every read-modify-write.
//   - Node files are replaced atomically (temp file, fsync, rename, fsync of
//     the directory): a reader sees the old or the new file, never a part.
//   - Names starting with a dot are reserved for the store itself (the lock,
//     temp files, flags) and are ignored by List.
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
// whether there was an entry before.
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
	old, err := readFile(p, nil)
	existed = err == nil
	if existed && bytes.Equal(old, data) {
		return false, true, nil
	}
	if err := writeAtomic(s.dir, p, data); err != nil {
		return false, existed, err
	}
	return true, existed, nil
}

// Remove unregisters the node called name. Removing a node that is not
// registered is not an error; removed reports whether there was one.
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
	return true, syncDir(s.dir)
}

// List returns every registered node, sorted by name. Any entry that is not
// a readable node file (an empty or garbled file, a directory, a name that
// ValidName rejects) makes List fail with an error naming it: rendering
// without it would silently drop a server.
func (s *Store) List() ([]Node, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, err
	}
	// A registry is read one file per node, and reading is mostly system
	// calls: with thousands of nodes a few goroutines read at once, each
	// taking the next chunk of entries, and every result lands in its
	// entry's slot so that the order (and the errors') stays ReadDir's.
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
			for i := lo; i < min(lo+listChunk, len(entries)); i++ {
				buf = s.readEntry(entries[i], &slots[i], buf)
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
	var errs []error
	for _, sl := range slots {
		switch {
		case sl.err != nil:
			errs = append(errs, sl.err)
		case sl.ok:
			nodes = append(nodes, sl.node)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Name < nodes[j].Name })
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
// or nothing (a dotfile, a file removed meanwhile).
type listSlot struct {
	node Node
	ok   bool
	err  error
}

// readEntry reads the directory entry e into sl, using buf as its read
// buffer, and returns the buffer for the next call.
func (s *Store) readEntry(e os.DirEntry, sl *listSlot, buf []byte) []byte {
	name := e.Name()
	if strings.HasPrefix(name, ".") {
		return buf
	}
	p := filepath.Join(s.dir, name)
	if err := ValidName(name); err != nil {
		sl.err = fmt.Errorf("registry entry %s: %v", p, err)
		return buf
	}
	if e.IsDir() {
		sl.err = fmt.Errorf("registry entry %s: is a directory, not a node file; hint: move it out of the registry", p)
		return buf
	}
	if !e.Type().IsRegular() {
		sl.err = fmt.Errorf("registry entry %s: not a regular file (%s)", p, e.Type())
		return buf
	}
	data, err := readFile(p, buf)
	if errors.Is(err, os.ErrNotExist) {
		return buf // removed since ReadDir by someone not holding the lock
	}
	if err != nil {
		sl.err = err
		return buf
	}
	n, err := decode(name, data)
	if err != nil {
		sl.err = fmt.Errorf("registry entry %s: %v", p, err)
		return data
	}
	sl.node, sl.ok = n, true
	return data
}

// readFile returns the content of the node file p, read into buf (which
// may be nil) and at most maxFileSize bytes long. It makes the system calls
// itself: os.Open's set-up of a File (poller registration, two fcntl calls
// each way) cost more than reading a node file, List reads one file per
// node, and a buffer reused across a List spares an allocation per node.
func readFile(p string, buf []byte) ([]byte, error) {
	var fd int
	err := ignoringEINTR(func() (err error) {
		fd, err = syscall.Open(p, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		return err
	})
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: p, Err: err}
	}
	defer syscall.Close(fd)
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
			return nil, &os.PathError{Op: "read", Path: p, Err: err}
		}
		if n <= 0 {
			return buf, nil
		}
		if buf = buf[:len(buf)+n]; len(buf) > maxFileSize {
			return nil, fmt.Errorf("read %s: larger than %d bytes", p, maxFileSize)
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
