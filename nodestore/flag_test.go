package nodestore

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

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
	if nodes, bad, err := st.List(); err != nil || len(nodes) != 0 || len(bad) != 0 {
		t.Fatalf("List sees the flags: %v, %v, %v", nodes, bad, err)
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
