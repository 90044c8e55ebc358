package nodestore

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

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
	got := list(t, st)
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

// A name put twice in one PutAll ends with its last change, whatever
// became of the last put, as Puts one after the other would.
func TestPutAllRepeatedName(t *testing.T) {
	bad := Node{Name: "dup"} // no address: refused
	for _, tc := range []struct {
		name  string
		puts  []Node
		want  string // the file's first line
		check func([]PutResult) bool
	}{
		{"last identical to the first", []Node{node("dup", "10.0.2.1"), node("dup", "10.0.2.1")}, "dup 10.0.2.1",
			func(r []PutResult) bool { return r[0].Changed && !r[0].Existed && !r[1].Changed && r[1].Existed }},
		{"last refused", []Node{node("dup", "10.0.2.1"), bad}, "dup 10.0.2.1",
			func(r []PutResult) bool { return r[0].Changed && r[1].Err != nil }},
		{"back to the first", []Node{node("dup", "10.0.2.1"), node("dup", "10.0.2.2"), node("dup", "10.0.2.1")}, "dup 10.0.2.1",
			func(r []PutResult) bool { return r[0].Changed && r[1].Changed && r[2].Changed && r[2].Existed }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newStore(t)
			res := st.PutAll(tc.puts)
			if !tc.check(res) {
				t.Errorf("results %+v", res)
			}
			b, err := os.ReadFile(filepath.Join(st.Dir(), "dup"))
			if first, _, _ := strings.Cut(string(b), "\n"); err != nil || first != tc.want {
				t.Errorf("dup holds %q (%v), want first line %q", b, err, tc.want)
			}
			assertNoTemp(t, st.Dir())
		})
	}
}

// Every flush method leaves the same registry and no temp file.
func TestPutAllFlushMethods(t *testing.T) {
	defer func(m flushMethod, n int) { flushWith, batchSyncMin = m, n }(flushWith, batchSyncMin)
	for _, m := range []flushMethod{flushAuto, flushSyncFS, flushEach, flushOneByOne} {
		for _, count := range []int{1, 40} {
			t.Run(fmt.Sprintf("method=%d/nodes=%d", m, count), func(t *testing.T) {
				flushWith = m
				st := newStore(t)
				var nodes []Node
				for i := range count {
					nodes = append(nodes, node(fmt.Sprintf("web%02d", i), fmt.Sprintf("10.0.0.%d", i+1)))
				}
				for i, r := range st.PutAll(nodes) {
					if r.Err != nil || !r.Changed || r.Existed {
						t.Fatalf("put of %s: %+v", nodes[i].Name, r)
					}
				}
				if err := st.Sync(); err != nil {
					t.Fatal(err)
				}
				if got := list(t, st); !reflect.DeepEqual(got, nodes) {
					t.Fatalf("List after PutAll:\n got %v\nwant %v", got, nodes)
				}
				for _, n := range nodes {
					fi, err := os.Stat(filepath.Join(st.Dir(), n.Name))
					if err != nil || fi.Mode().Perm() != 0o644 {
						t.Fatalf("%s: %v, mode %v, want 0644", n.Name, err, fi.Mode())
					}
				}
				assertNoTemp(t, st.Dir())
			})
		}
	}
}

func assertNoTemp(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if isTemp(e.Name()) {
			t.Errorf("temp file %s left behind", e.Name())
		}
	}
}

// Under the lock, List serves the files PutAll just wrote from what it
// wrote; the registry it returns is the same as read from the files.
func TestPutAllFreshList(t *testing.T) {
	st := newStore(t)
	unlock, err := st.Lock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var nodes []Node
	for i := range 40 {
		nodes = append(nodes, node(fmt.Sprintf("web%02d", i), fmt.Sprintf("10.0.0.%d", i+1)))
	}
	st.PutAll(nodes)
	if len(st.fresh) != len(nodes) {
		t.Fatalf("%d fresh files, want %d", len(st.fresh), len(nodes))
	}
	if _, err := st.Remove("web00"); err != nil {
		t.Fatal(err)
	}
	got := list(t, st)
	unlock()
	if st.fresh != nil {
		t.Fatal("fresh files kept after unlock")
	}
	if !reflect.DeepEqual(got, nodes[1:]) {
		t.Fatalf("List under the lock:\n got %v\nwant %v", got, nodes[1:])
	}
	if again := list(t, st); !reflect.DeepEqual(again, got) {
		t.Fatalf("List from the files:\n got %v\nwant %v", again, got)
	}
}

// StageAll writes and reports, but changes nothing until Commit: what
// lets a run work out a joining member's server while its node file is
// made durable. Discard instead leaves the registry as it was.
func TestStageAll(t *testing.T) {
	st := newStore(t)
	if res := st.PutAll([]Node{node("web1", "10.0.0.1")}); res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	puts := []Node{node("web1", "10.0.0.9"), node("web2", "10.0.0.2"), node("web3", "10.0.0.3")}
	for _, commit := range []bool{false, true} {
		t.Run(fmt.Sprintf("commit=%v", commit), func(t *testing.T) {
			b := st.StageAll(puts)
			want := []PutResult{{Changed: true, Existed: true}, {Changed: true}, {Changed: true}}
			if got := b.Results(); !slices.Equal(got, want) {
				t.Fatalf("staged results %+v, want %+v", got, want)
			}
			if got := listed(t, st); got != "web1 10.0.0.1" {
				t.Fatalf("registry before Commit: %s, want web1 at 10.0.0.1 only", got)
			}
			if !commit {
				b.Discard()
				if got := listed(t, st); got != "web1 10.0.0.1" {
					t.Fatalf("registry after Discard: %s, want web1 at 10.0.0.1 only", got)
				}
				if res := b.Commit(); res[1].Changed {
					t.Errorf("Commit after Discard reports %+v: nothing changed", res)
				}
				assertNoTemp(t, st.Dir())
				return
			}
			if got := b.Commit(); !slices.Equal(got, want) {
				t.Fatalf("committed results %+v, want %+v", got, want)
			}
			b.Discard() // after Commit: nothing to take back
			if got := listed(t, st); got != "web1 10.0.0.9, web2 10.0.0.2, web3 10.0.0.3" {
				t.Fatalf("registry after Commit: %s", got)
			}
			assertNoTemp(t, st.Dir())
		})
	}
}

// listed is the registry's nodes as "name addr, ...".
func listed(t *testing.T, st *Store) string {
	t.Helper()
	nodes, bad, err := st.List()
	if err != nil || len(bad) > 0 {
		t.Fatalf("list: %v %v", err, bad)
	}
	var s []string
	for _, n := range nodes {
		s = append(s, n.Name+" "+n.Addr.String())
	}
	return strings.Join(s, ", ")
}
