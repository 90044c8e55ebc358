package nodestore

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func newStore(t *testing.T) *Store {
	t.Helper()
	st, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func node(name, addr string) Node {
	return Node{Name: name, Addr: netip.MustParseAddr(addr), Role: "backend", Tags: map[string]string{"role": "backend"}}
}

func TestPutGetListRemove(t *testing.T) {
	st := newStore(t)
	a, b := node("web2", "127.0.0.12"), node("web1", "::1")
	b.Tags["port"] = "8080"
	for _, n := range []Node{a, b} {
		changed, existed, err := st.Put(n)
		if err != nil || !changed || existed {
			t.Fatalf("Put(%s) = %v, %v, %v; want true, false, nil", n.Name, changed, existed, err)
		}
	}
	if changed, existed, err := st.Put(a); err != nil || changed || !existed {
		t.Fatalf("Put of an identical node = %v, %v, %v; want false, true, nil", changed, existed, err)
	}
	moved := a
	moved.Addr = netip.MustParseAddr("127.0.0.99")
	if changed, existed, err := st.Put(moved); err != nil || !changed || !existed {
		t.Fatalf("Put of a changed node = %v, %v, %v; want true, true, nil", changed, existed, err)
	}
	if _, _, err := st.Put(a); err != nil {
		t.Fatal(err)
	}
	got := list(t, st)
	if want := []Node{b, a}; !reflect.DeepEqual(got, want) {
		t.Fatalf("List = %+v, want %+v (sorted by name)", got, want)
	}
	if removed, err := st.Remove("web1"); err != nil || !removed {
		t.Fatalf("Remove(web1) = %v, %v; want true, nil", removed, err)
	}
	if removed, err := st.Remove("web1"); err != nil || removed {
		t.Fatalf("second Remove(web1) = %v, %v; want false, nil (a no-op)", removed, err)
	}
	if got := list(t, st); !reflect.DeepEqual(got, []Node{a}) {
		t.Fatalf("List after Remove(web1) = %+v; want only web2", got)
	}
}

func TestHostileNamesNeverBecomePaths(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "nodes")
	st, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(parent, "victim")
	if err := os.WriteFile(victim, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"../victim", "*", "a/b", "/etc/passwd", ".lock", "..", "."} {
		n := node("x", "10.0.0.1")
		n.Name = name
		if _, _, err := st.Put(n); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("Put(%q) = %v, want an error naming it", name, err)
		}
		if _, err := st.Remove(name); err == nil {
			t.Errorf("Remove(%q) = nil error, want one", name)
		}
	}
	if b, err := os.ReadFile(victim); err != nil || string(b) != "keep" {
		t.Fatalf("file outside the registry changed: %q, %v", b, err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Name() != ".lock" {
			t.Errorf("unexpected registry entry %q", e.Name())
		}
	}
}
