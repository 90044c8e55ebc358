package haproxy

import (
	"slices"
	"strings"
	"testing"
)

// The byte-by-byte splitters of the hot paths split exactly as the
// strings functions they replace, UTF-8 or not.
var splitSeeds = []string{"", " ", "\t", "a", " a\tb  c ", "x\u00a0y z", "\xff \xfe\t", "é è", "a\r\nb\v\fc",
	"    server web1 10.0.0.1:80 check weight 10", "1 nodes 3 web0 127.0.0.1 2 0 1 1 60 1 0 0 0 0 0 - 3000 -"}

func FuzzSplitBlanks(f *testing.F) {
	for _, s := range splitSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want := strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == '\t' })
		if got := splitBlanks(s); !slices.Equal(got, want) {
			t.Fatalf("splitBlanks(%q) = %q, want %q", s, got, want)
		}
	})
}

func FuzzAppendFields(f *testing.F) {
	for _, s := range splitSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := appendFields([]string{"kept"}, s), append([]string{"kept"}, strings.Fields(s)...); !slices.Equal(got, want) {
			t.Fatalf("appendFields(%q) = %q, want %q", s, got, want)
		}
	})
}

// Parse's memo gives the same result for the same bytes, and a fresh one
// for other bytes, however the calls alternate.
func TestParseMemo(t *testing.T) {
	a := []byte("backend b\n    server s1 10.0.0.1:80 weight 2\n")
	b := []byte("backend b\n    server s1 10.0.0.1:80 weight 3\n")
	c := []byte("backend b\n    server s2 10.0.0.2:80\n")
	for i, tc := range []struct {
		cfg    []byte
		name   string
		weight int
	}{{a, "s1", 2}, {b, "s1", 3}, {a, "s1", 2}, {c, "s2", 1}, {b, "s1", 3}, {slices.Clone(a), "s1", 2}} {
		s := Parse(tc.cfg).Section("b").Servers[0]
		if s.Name != tc.name || s.Weight != tc.weight {
			t.Errorf("call %d: server %s weight %d, want %s weight %d", i, s.Name, s.Weight, tc.name, tc.weight)
		}
	}
	// The memo keeps copies: bytes rewritten in place after a Parse are
	// read as they now are, and the earlier result stays as it was.
	buf := slices.Clone(a)
	before := Parse(buf)
	copy(buf, b)
	if w := Parse(buf).Section("b").Servers[0].Weight; w != 3 {
		t.Errorf("bytes rewritten in place: weight %d, want 3", w)
	}
	if w := before.Section("b").Servers[0].Weight; w != 2 {
		t.Errorf("the earlier result changed with the bytes: weight %d, want 2", w)
	}
}
