package nodestore

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"unicode"
	"unicode/utf8"

	hname "github.com/serf-hb/serf-hb/internal/name"
)

// MaxNameLen is the longest node name the store accepts, in bytes. A node
// file is staged as "." + name + up to 20 random digits, and that must fit
// the 255-byte file name limit of common file systems.
const MaxNameLen = 234

// Node is one registered member.
type Node struct {
	Name string            `json:"name"`
	Addr netip.Addr        `json:"addr"`
	Role string            `json:"role,omitempty"`
	Tags map[string]string `json:"tags,omitempty"`
}

// meta is the optional second line of a node file (meta.go reads it).
type meta struct {
	Role string            `json:"role,omitempty"`
	Tags map[string]string `json:"tags,omitempty"`
}

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
	if i := hname.Bad(name); i >= 0 {
		r, _ := utf8.DecodeRuneInString(name[i:])
		return fmt.Errorf("character %q at byte %d is not allowed (only A-Z a-z 0-9 _ . : - are, as in HAProxy server names)", r, i)
	}
	return nil
}

// encode renders n in the node file format.
func encode(n Node) ([]byte, error) {
	size := 80 + len(n.Name) + len(n.Role) // the address, the keys and punctuation
	for k, v := range n.Tags {
		size += len(k) + len(v) + 6
	}
	b := make([]byte, 0, size)
	b = append(append(append(b, n.Name...), ' '), n.Addr.String()...)
	b = append(b, '\n')
	if m, ok := appendMeta(b, n.Role, n.Tags); ok {
		return append(m, '\n'), nil
	}
	m, err := json.Marshal(meta{Role: n.Role, Tags: n.Tags})
	if err != nil {
		return nil, err
	}
	return append(append(b, m...), '\n'), nil
}

// appendMeta appends what json.Marshal makes of meta{role, tags} when
// every string in it is plain (jsonPlain), and reports whether it was: a
// start-up batch encodes every member, and json.Marshal's reflection over
// a map took a quarter of the batch's allocations.
func appendMeta(b []byte, role string, tags map[string]string) ([]byte, bool) {
	if !jsonPlain(role) {
		return b, false
	}
	keys := make([]string, 0, len(tags))
	for k, v := range tags {
		if !jsonPlain(k) || !jsonPlain(v) {
			return b, false
		}
		keys = append(keys, k)
	}
	slices.Sort(keys) // json.Marshal's order
	b = append(b, '{')
	if role != "" {
		b = append(append(append(b, `"role":"`...), role...), '"')
	}
	if len(tags) > 0 {
		if role != "" {
			b = append(b, ',')
		}
		b = append(b, `"tags":{`...)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(append(append(append(append(b, '"'), k...), `":"`...), tags[k]...), '"')
		}
		b = append(b, '}')
	}
	return append(b, '}'), true
}

// jsonPlain reports whether json.Marshal writes s as it is between
// quotes: printable ASCII without the characters it escapes (its HTML
// escaping included).
func jsonPlain(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c > 0x7e, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}

// decode parses a node file named name.
func decode(name string, data []byte) (Node, error) { return decodeWith(name, data, nil) }

// decodeWith is decode making its strings with in (nil: none).
func decodeWith(name string, data []byte, in *interner) (Node, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return Node{}, errors.New("file is empty")
	}
	first, rest, _ := bytes.Cut(data, []byte("\n"))
	// "NAME ADDR", split without allocating: List decodes every node.
	f0, f1, extra := fields2(first)
	if f0 == nil || f1 == nil || extra {
		return Node{}, fmt.Errorf("first line %q is not \"NAME ADDR\"", first)
	}
	if string(f0) != name {
		return Node{}, fmt.Errorf("file names node %q", f0)
	}
	addr, err := netip.ParseAddr(string(f1))
	if err != nil {
		// netip's own message quotes its function call: say it plainly.
		return Node{}, fmt.Errorf("address %q is not an IP address (serf-hb registers members by IP; a host name cannot be a server's address here)", f1)
	}
	// A zone ("fe80::1%eth0") is no address HAProxy resolves: rendered,
	// it would fail the check, and with it every later run.
	if addr.Zone() != "" {
		return Node{}, fmt.Errorf("address %s has a zone", addr)
	}
	n := Node{Name: name, Addr: addr}
	if rest = bytes.TrimSpace(rest); len(rest) > 0 {
		m, err := decodeMeta(rest, in)
		if err != nil {
			return Node{}, fmt.Errorf("second line: %v", err)
		}
		n.Role, n.Tags = m.Role, m.Tags
	}
	return n, nil
}

// fields2 returns the first two fields of b, split at white space as
// strings.Fields splits it, and whether there are more.
func fields2(b []byte) (f0, f1 []byte, more bool) {
	next := func() []byte {
		b = bytes.TrimLeftFunc(b, unicode.IsSpace)
		if len(b) == 0 {
			return nil
		}
		i := bytes.IndexFunc(b, unicode.IsSpace)
		if i < 0 {
			i = len(b)
		}
		f := b[:i]
		b = b[i:]
		return f
	}
	f0, f1 = next(), next()
	return f0, f1, next() != nil
}
