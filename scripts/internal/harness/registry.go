package harness

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// The registry as an outside observer reads it, written here from the
// format rather than through package nodestore: an oracle that shared
// nodestore's decoder would share its bugs (a truncated file it accepted,
// a name it mapped to the wrong file), and the tests would agree with them.
//
// A node file is named after its node. Its first line is "NAME ADDR" (the
// lab's layout, which serf-hb reads as it is); serf-hb adds a second line,
// a JSON object with the node's role and tags. Names starting with a dot
// are the store's own.

// storeFiles are the dot files the store keeps for itself; any other dot
// file is a writer's temp file.
var storeFiles = map[string]bool{".lock": true, ".index": true}

// Node is one node file.
type Node struct {
	Name string
	Addr netip.Addr
	Role string
	Tags map[string]string
	// Meta reports whether the file has serf-hb's second line; a file in
	// the lab's one-line layout has not.
	Meta bool
	Data []byte // the file's bytes
}

// Registry is a registry directory at one moment.
type Registry struct {
	Nodes map[string]Node
	// Temps lists the dot files other than the store's own: temp files
	// of writers at work, or of writers that died.
	Temps []string
}

// ReadRegistry reads every node file of dir. A file that is not a
// complete node file is an error naming it; one removed while the
// directory is read is left out.
func ReadRegistry(dir string) (Registry, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return Registry{}, err
	}
	r := Registry{Nodes: map[string]Node{}}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			if !storeFiles[name] {
				r.Temps = append(r.Temps, name)
			}
			continue
		}
		if !e.Type().IsRegular() {
			return Registry{}, fmt.Errorf("registry entry %s is a %v, not a node file", name, e.Type())
		}
		b, err := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed between ReadDir and the read
		}
		if err != nil {
			return Registry{}, err
		}
		n, err := ParseNode(name, b)
		if err != nil {
			return Registry{}, err
		}
		r.Nodes[name] = n
	}
	return r, nil
}

// ParseNode parses the node file named name: "NAME ADDR\n", optionally
// followed by one JSON object and "\n". NAME must be the file's name and
// ADDR an IP address without a zone.
func ParseNode(name string, b []byte) (Node, error) {
	bad := func(why string) (Node, error) {
		return Node{}, fmt.Errorf("registry file %s is not a complete node file (%s): %q", name, why, b)
	}
	if !bytes.HasSuffix(b, []byte("\n")) {
		return bad("no final newline")
	}
	first, rest, _ := bytes.Cut(b, []byte("\n"))
	fname, faddr, ok := strings.Cut(string(first), " ")
	if !ok {
		return bad(`first line is not "NAME ADDR"`)
	}
	if fname != name {
		return bad("it names node " + fname)
	}
	addr, err := netip.ParseAddr(faddr)
	if err != nil || addr.Zone() != "" {
		return bad("address " + faddr)
	}
	n := Node{Name: name, Addr: addr, Data: b}
	if len(rest) == 0 {
		return n, nil
	}
	meta, after, _ := bytes.Cut(rest, []byte("\n"))
	if len(after) > 0 {
		return bad("more than two lines")
	}
	var m struct {
		Role string            `json:"role"`
		Tags map[string]string `json:"tags"`
	}
	if !bytes.HasPrefix(meta, []byte("{")) || json.Unmarshal(meta, &m) != nil {
		return bad("second line is not a JSON object of role and tags")
	}
	n.Meta, n.Role, n.Tags = true, m.Role, m.Tags
	return n, nil
}

// Names returns the node names, sorted.
func (r Registry) Names() []string {
	names := make([]string, 0, len(r.Nodes))
	for n := range r.Nodes {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Lines returns each node's first line, "NAME ADDR", sorted by name.
func (r Registry) Lines() []string {
	var lines []string
	for _, n := range r.Names() {
		first, _, _ := strings.Cut(string(r.Nodes[n].Data), "\n")
		lines = append(lines, first)
	}
	return lines
}

// Lab lists the nodes whose files have no metadata line, sorted: files a
// person or the lab's scripts wrote, never serf-hb.
func (r Registry) Lab() []string {
	var lab []string
	for _, n := range r.Names() {
		if !r.Nodes[n].Meta {
			lab = append(lab, n)
		}
	}
	return lab
}
