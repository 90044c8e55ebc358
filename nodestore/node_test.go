package nodestore

import (
	"encoding/json"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestValidName(t *testing.T) {
	good := []string{"web1", "web-1.example.com", "a_b", "::1", "-dash", strings.Repeat("a", MaxNameLen)}
	for _, n := range good {
		if err := ValidName(n); err != nil {
			t.Errorf("ValidName(%q) = %v, want nil", n, err)
		}
	}
	bad := []string{"", ".", "..", "../evil", "a/b", "*", "web?", "web 1", ".hidden", "a\x00b", "tab\there",
		"amp&<lt>\"q\"", "wéb", strings.Repeat("a", MaxNameLen+1), strings.Repeat("b", 300)}
	for _, n := range bad {
		if err := ValidName(n); err == nil {
			t.Errorf("ValidName(%q) = nil, want an error", n)
		}
	}
}

func TestFileLayoutIsTheLabs(t *testing.T) {
	st := newStore(t)
	if _, _, err := st.Put(node("web1", "10.0.0.1")); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(st.Dir(), "web1"))
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(string(data), "\n")
	if first != "web1 10.0.0.1" {
		t.Fatalf("first line = %q, want the lab's %q", first, "web1 10.0.0.1")
	}
}

func TestReadsLabFiles(t *testing.T) {
	st := newStore(t)
	// What the lab's member-join.sh writes: echo "$HOSTNAME $HOSTIP" > /nodes/$HOSTNAME
	if err := os.WriteFile(filepath.Join(st.Dir(), "s1"), []byte("s1 192.168.42.11\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got := list(t, st)
	want := []Node{{Name: "s1", Addr: netip.MustParseAddr("192.168.42.11")}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("List = %+v, want %+v", got, want)
	}
}

// encode's fast path writes exactly what json.Marshal would: the files of
// registries written before it compare equal (an unchanged Put writes
// nothing), and decode's fast path reads them.
func TestEncodeAsJSON(t *testing.T) {
	strs := []string{"", "backend", "3000", "a b", "<x>", "a&b", `q"`, `b\s`, "é", "\x01", "\u2028", "k=v,w", "\xff"}
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func() string { return strs[rng.IntN(len(strs))] }
	for i := range 2000 {
		var tags map[string]string
		if i%7 != 0 {
			tags = map[string]string{}
			for range rng.IntN(4) {
				tags[pick()] = pick()
			}
		}
		n := Node{Name: "web1", Addr: netip.MustParseAddr("10.0.0.1"), Role: pick(), Tags: tags}
		got, err := encode(n)
		if err != nil {
			t.Fatal(err)
		}
		m, err := json.Marshal(meta{Role: n.Role, Tags: n.Tags})
		if err != nil {
			t.Fatal(err)
		}
		if want := "web1 10.0.0.1\n" + string(m) + "\n"; string(got) != want {
			t.Fatalf("encode(%+v) = %q, want %q", n, got, want)
		}
	}
}

// fields2 splits a node file's first line as strings.Fields does.
func FuzzFields2(f *testing.F) {
	for _, s := range []string{"web1 10.0.0.1", "  web1\t10.0.0.1  ", "web1", "", "a b c", "a\u00a0b", "a\u2028b c", "\xffa b", " \x85x y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want := strings.Fields(s)
		f0, f1, more := fields2([]byte(s))
		var got []string
		for _, f := range [][]byte{f0, f1} {
			if f != nil {
				got = append(got, string(f))
			}
		}
		if len(want) > 2 {
			want = want[:2]
		}
		if !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) || more != (len(strings.Fields(s)) > 2) {
			t.Fatalf("fields2(%q) = %q, more %v; strings.Fields: %q", s, got, more, strings.Fields(s))
		}
	})
}
