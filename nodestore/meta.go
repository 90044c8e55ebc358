package nodestore

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// decodeMeta parses the second line of a node file. That line is nearly
// always encode's own output, json.Marshal of a meta: no spaces, the
// fields in order, strings that need no escapes. encoding/json's reflection
// costs more than everything else List does per node, so that shape is
// read directly by parseMeta; anything else (escapes, spaces, other keys,
// nulls, invalid UTF-8, repeated keys) goes to json.Unmarshal, which
// therefore decides every result but the plain ones.
func decodeMeta(b []byte, in *interner) (meta, error) {
	if m, ok := parseMetaWith(b, in); ok {
		return m, nil
	}
	var m meta
	err := json.Unmarshal(b, &m)
	return m, err
}

// parseMeta reads {"role":"...","tags":{"k":"v",...}} (each field
// optional) when every string in it is plain; ok is false for anything
// else, whatever the reason.
func parseMeta(b []byte) (m meta, ok bool) { return parseMetaWith(b, nil) }

// parseMetaWith is parseMeta making its strings with in (nil: none).
func parseMetaWith(b []byte, in *interner) (m meta, ok bool) {
	p := metaParser{b: b, in: in}
	if !p.skip('{') {
		return meta{}, false
	}
	if p.skip('}') {
		return m, p.i == len(b)
	}
	var seenRole, seenTags bool
	for {
		key, ok := p.str()
		if !ok || !p.skip(':') {
			return meta{}, false
		}
		switch {
		case key == "role" && !seenRole:
			seenRole = true
			if m.Role, ok = p.str(); !ok {
				return meta{}, false
			}
		case key == "tags" && !seenTags:
			seenTags = true
			if m.Tags, ok = p.tags(); !ok {
				return meta{}, false
			}
		default:
			// Another key (json matches field names case-insensitively
			// and ignores unknown ones), or a repeated one: not ours.
			return meta{}, false
		}
		if p.skip('}') {
			return m, p.i == len(b)
		}
		if !p.skip(',') {
			return meta{}, false
		}
	}
}

type metaParser struct {
	b  []byte
	i  int
	in *interner
}

// interner makes strings out of bytes, once for each short string it sees
// again: across a registry the tag keys, the roles and most tag values
// (ports, zones) are the same few, and List makes them for every node.
// One per goroutine; the zero value is ready.
type interner struct{ m map[string]string }

const (
	maxInterned    = 4096 // strings kept, so that unique values cannot grow it without bound
	maxInternedLen = 64
)

func (in *interner) str(b []byte) string {
	if in == nil || len(b) > maxInternedLen {
		return string(b)
	}
	if s, ok := in.m[string(b)]; ok { // no allocation for the lookup
		return s
	}
	s := string(b)
	if in.m == nil {
		in.m = make(map[string]string)
	}
	if len(in.m) < maxInterned {
		in.m[s] = s
	}
	return s
}

func (p *metaParser) skip(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// str reads a JSON string whose value is its bytes as they are: no escape,
// no control character, valid UTF-8 (json.Unmarshal would replace invalid
// bytes with U+FFFD).
func (p *metaParser) str() (string, bool) {
	if !p.skip('"') {
		return "", false
	}
	start := p.i
	for ; p.i < len(p.b); p.i++ {
		switch c := p.b[p.i]; {
		case c == '"':
			s := p.b[start:p.i]
			p.i++
			if !utf8.Valid(s) {
				return "", false
			}
			return p.in.str(s), true
		case c == '\\' || c < 0x20:
			return "", false
		}
	}
	return "", false
}

// tags reads an object of strings; an empty object is an empty map, as
// json.Unmarshal makes it.
func (p *metaParser) tags() (map[string]string, bool) {
	if !p.skip('{') {
		return nil, false
	}
	if p.skip('}') {
		return map[string]string{}, true
	}
	// Sized up front (an upper bound: a value may hold a comma): List
	// decodes every node's tags, and a map grown by doubling made twice
	// its size in garbage.
	end := bytes.IndexByte(p.b[p.i:], '}')
	if end < 0 {
		return nil, false
	}
	tags := make(map[string]string, bytes.Count(p.b[p.i:p.i+end], []byte{','})+1)
	for {
		k, ok := p.str()
		if !ok || !p.skip(':') {
			return nil, false
		}
		v, ok := p.str()
		if !ok {
			return nil, false
		}
		if _, dup := tags[k]; dup {
			return nil, false
		}
		tags[k] = v
		if p.skip('}') {
			return tags, true
		}
		if !p.skip(',') {
			return nil, false
		}
	}
}
