package nodestore

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestListManyNodes covers List's fan-out: a registry of several chunks is
// read by several goroutines, and the nodes still come back complete and
// sorted, the errors in name order.
func TestListManyNodes(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		t.Log("GOMAXPROCS is 1: List reads with one goroutine")
	}
	st := benchStore(t, 3*listChunk+7)
	nodes, err := st.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 3*listChunk+7 {
		t.Fatalf("List returned %d nodes, want %d", len(nodes), 3*listChunk+7)
	}
	for i, n := range nodes {
		want := benchNode(i)
		if n.Name != want.Name || n.Addr != want.Addr || n.Role != want.Role || n.Tags["port"] != "3000" {
			t.Fatalf("node %d = %+v, want %+v", i, n, want)
		}
	}

	// Garbled entries in different chunks: every one is reported, in name
	// order (ReadDir's is the file system's).
	bad := []string{benchNode(5).Name, benchNode(2*listChunk + 1).Name, benchNode(3 * listChunk).Name}
	for _, name := range bad {
		if err := os.WriteFile(filepath.Join(st.Dir(), name), []byte("garbage\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.List(); err == nil {
		t.Fatal("List accepted garbled entries")
	} else {
		msg, last := err.Error(), -1
		for _, name := range bad {
			i := strings.Index(msg, filepath.Join(st.Dir(), name))
			if i < 0 || i < last {
				t.Fatalf("List error does not name %s in name order: %v", name, err)
			}
			last = i
		}
	}
}
