package nodestore

import (
	"context"
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

// TestListRemovesStaleTemps: a node file's temp file left by a run that
// died is removed by the next List made under the lock, and only then: an
// unlocked List (serf-hb nodes) cannot tell it from a write in progress.
func TestListRemovesStaleTemps(t *testing.T) {
	st := newStore(t)
	stale := filepath.Join(st.Dir(), ".web1829374")
	if err := os.WriteFile(stale, []byte("web1 10.0"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := st.List(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); err != nil {
		t.Fatalf("List without the lock removed a temp file: %v", err)
	}
	unlock, err := st.Lock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.List(); err != nil {
		t.Fatal(err)
	}
	unlock()
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatalf("stale temp file survived a locked List: %v", err)
	}
}
