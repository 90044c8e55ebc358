package nodestore

import (
	"context"
	"fmt"
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
	got, err := st.List()
	if err != nil {
		t.Fatal(err)
	}
	if want := []Node{b, a}; !reflect.DeepEqual(got, want) {
		t.Fatalf("List = %+v, want %+v (sorted by name)", got, want)
	}
	if removed, err := st.Remove("web1"); err != nil || !removed {
		t.Fatalf("Remove(web1) = %v, %v; want true, nil", removed, err)
	}
	if removed, err := st.Remove("web1"); err != nil || removed {
		t.Fatalf("second Remove(web1) = %v, %v; want false, nil (a no-op)", removed, err)
	}
	if got, err := st.List(); err != nil || !reflect.DeepEqual(got, []Node{a}) {
		t.Fatalf("List after Remove(web1) = %+v, %v; want only web2", got, err)
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
	got, err := st.List()
	if err != nil {
		t.Fatal(err)
	}
	want := []Node{{Name: "s1", Addr: netip.MustParseAddr("192.168.42.11")}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("List = %+v, want %+v", got, want)
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

func TestListRefusesWhatItCannotRead(t *testing.T) {
	cases := map[string]func(dir string) error{
		"empty file":  func(dir string) error { return os.WriteFile(filepath.Join(dir, "web9"), nil, 0o644) },
		"garbled":     func(dir string) error { return os.WriteFile(filepath.Join(dir, "web9"), []byte("web9\n"), 0o644) },
		"bad address": func(dir string) error { return os.WriteFile(filepath.Join(dir, "web9"), []byte("web9 nope\n"), 0o644) },
		"wrong name": func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "web9"), []byte("web8 10.0.0.8\n"), 0o644)
		},
		"subdirectory": func(dir string) error { return os.Mkdir(filepath.Join(dir, "lost+found"), 0o755) },
	}
	for name, setup := range cases {
		t.Run(name, func(t *testing.T) {
			st := newStore(t)
			if _, _, err := st.Put(node("web1", "10.0.0.1")); err != nil {
				t.Fatal(err)
			}
			if err := setup(st.Dir()); err != nil {
				t.Fatal(err)
			}
			nodes, err := st.List()
			if err == nil {
				t.Fatalf("List = %v, nil; want an error rather than a registry missing a node", nodes)
			}
			if !strings.Contains(err.Error(), st.Dir()) {
				t.Errorf("error %q does not name the entry", err)
			}
		})
	}
}

func TestListIgnoresDotfiles(t *testing.T) {
	st := newStore(t)
	if _, _, err := st.Put(node("web1", "10.0.0.1")); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{".lock", ".web112345", ".index"} {
		if err := os.WriteFile(filepath.Join(st.Dir(), f), []byte("junk"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	nodes, err := st.List()
	if err != nil || len(nodes) != 1 {
		t.Fatalf("List = %v, %v; want only web1", nodes, err)
	}
}

func TestFlags(t *testing.T) {
	st := newStore(t)
	if err := st.SetFlag("reload-pending", true); err == nil {
		t.Fatal("SetFlag without the lock succeeded")
	}
	if !st.Flag("reload-pending") {
		t.Fatal("Flag without the lock reports false; unknown flags must read as set")
	}
	unlock, err := st.Lock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Flag("reload-pending") {
		t.Fatal("flag set in a new store")
	}
	for _, f := range []string{"reload-pending", "other", "reload-pending"} {
		if err := st.SetFlag(f, true); err != nil {
			t.Fatal(err)
		}
	}
	unlock()

	// Flags outlive the lock: the next holder sees them.
	unlock, err = st.Lock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	if !st.Flag("reload-pending") || !st.Flag("other") {
		t.Fatal("flags lost between two holders of the lock")
	}
	if b, _ := os.ReadFile(filepath.Join(st.Dir(), lockName)); string(b) != "reload-pending\nother\n" {
		t.Fatalf("lock file holds %q", b)
	}
	if nodes, err := st.List(); err != nil || len(nodes) != 0 {
		t.Fatalf("List sees the flags: %v, %v", nodes, err)
	}
	if err := st.SetFlag("reload-pending", false); err != nil {
		t.Fatal(err)
	}
	if st.Flag("reload-pending") || !st.Flag("other") {
		t.Fatal("SetFlag(false) cleared the wrong flag")
	}
	if b, _ := os.ReadFile(filepath.Join(st.Dir(), lockName)); string(b) != "other\n" {
		t.Fatalf("lock file holds %q", b)
	}
}

func TestIsTemp(t *testing.T) {
	for name, want := range map[string]bool{
		".web11234567": true, ".a1": true, ".lock": false, ".index": false,
		"web1": false, ".": false, "..1": false, ".web1": true, // ".web1" could be "web" + 1
	} {
		if got := isTemp(name); got != want {
			t.Errorf("isTemp(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestPutAll(t *testing.T) {
	st := newStore(t)
	var nodes []Node
	for i := range 50 {
		nodes = append(nodes, node(fmt.Sprintf("web%02d", i), fmt.Sprintf("10.0.0.%d", i+1)))
	}
	for i, r := range st.PutAll(nodes) {
		if r.Err != nil || !r.Changed || r.Existed {
			t.Fatalf("first put of %s: %+v", nodes[i].Name, r)
		}
	}
	// Half of them move: changed and existed; the rest are untouched.
	for i := range nodes {
		if i%2 == 0 {
			nodes[i].Addr = netip.MustParseAddr(fmt.Sprintf("10.0.1.%d", i+1))
		}
	}
	nodes = append(nodes, Node{Name: "bad/name", Addr: netip.MustParseAddr("10.0.0.99")})
	res := st.PutAll(nodes)
	for i, r := range res[:50] {
		if r.Err != nil || r.Changed != (i%2 == 0) || !r.Existed {
			t.Fatalf("second put of %s: %+v", nodes[i].Name, r)
		}
	}
	if res[50].Err == nil {
		t.Fatal("a node with a bad name was put")
	}
	if !st.unsynced.Load() {
		t.Fatal("puts not marked for Sync")
	}
	if err := st.Sync(); err != nil || st.unsynced.Load() {
		t.Fatalf("Sync: %v, still unsynced: %v", err, st.unsynced.Load())
	}
	got, err := st.List()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, nodes[:50]) {
		t.Fatalf("List after PutAll:\n got %v\nwant %v", got, nodes[:50])
	}

	// A name given twice: the last one wins, as with Puts in order.
	res = st.PutAll([]Node{node("dup", "10.0.2.1"), node("dup", "10.0.2.2")})
	if !res[0].Changed || res[0].Existed || !res[1].Changed || !res[1].Existed {
		t.Fatalf("duplicate puts: %+v", res)
	}
	if b, _ := os.ReadFile(filepath.Join(st.Dir(), "dup")); !strings.HasPrefix(string(b), "dup 10.0.2.2\n") {
		t.Fatalf("dup holds %q, want the last put", b)
	}
}
