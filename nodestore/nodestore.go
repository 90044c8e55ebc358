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
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
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
	n := Node{Name: name, Addr: addr}
	if rest = bytes.TrimSpace(rest); len(rest) > 0 {
		var m meta
		if err := json.Unmarshal(rest, &m); err != nil {
			return Node{}, fmt.Errorf("second line: %v", err)
		}
		n.Role, n.Tags = m.Role, m.Tags
	}
	return n, nil
}

// Get returns the node called name; ok is false when it is not registered.
func (s *Store) Get(name string) (n Node, ok bool, err error) {
	p, err := s.path(name)
	if err != nil {
		return Node{}, false, err
	}
	data, err := readFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return Node{}, false, nil
	}
	if err != nil {
		return Node{}, false, err
	}
	n, err = decode(name, data)
	if err != nil {
		return Node{}, false, fmt.Errorf("read node %s: %v", p, err)
	}
	return n, true, nil
}

// Put registers n, replacing any earlier entry of the same name. It reports
// whether the file changed; an identical entry is left untouched.
func (s *Store) Put(n Node) (changed bool, err error) {
	p, err := s.path(n.Name)
	if err != nil {
		return false, err
	}
	if !n.Addr.IsValid() {
		return false, fmt.Errorf("node %q: no address", n.Name)
	}
	data, err := encode(n)
	if err != nil {
		return false, fmt.Errorf("encode node %q: %v", n.Name, err)
	}
	if old, err := readFile(p); err == nil && bytes.Equal(old, data) {
		return false, nil
	}
	if err := writeAtomic(s.dir, p, data); err != nil {
		return false, err
	}
	return true, nil
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
	nodes := make([]Node, 0, len(entries))
	var errs []error
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		p := filepath.Join(s.dir, name)
		if err := ValidName(name); err != nil {
			errs = append(errs, fmt.Errorf("registry entry %s: %v", p, err))
			continue
		}
		if !e.Type().IsRegular() {
			errs = append(errs, fmt.Errorf("registry entry %s: not a regular file (%s)", p, e.Type()))
			continue
		}
		data, err := readFile(p)
		if errors.Is(err, os.ErrNotExist) {
			continue // removed since ReadDir by someone not holding the lock
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		n, err := decode(name, data)
		if err != nil {
			errs = append(errs, fmt.Errorf("registry entry %s: %v", p, err))
			continue
		}
		nodes = append(nodes, n)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Name < nodes[j].Name })
	return nodes, nil
}

func readFile(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var b bytes.Buffer
	n, err := b.ReadFrom(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if n > maxFileSize {
		return nil, fmt.Errorf("read %s: larger than %d bytes", p, maxFileSize)
	}
	return b.Bytes(), nil
}
