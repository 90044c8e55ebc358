package nodestore

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
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
