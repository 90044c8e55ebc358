package nodestore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
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

// lockedStore is a store of dir under its lock, released when t ends.
func lockedStore(t *testing.T, dir string) *Store {
	t.Helper()
	st, unlock := lockStore(t, dir)
	t.Cleanup(unlock)
	return st
}

// lockStore opens the store in dir, as a run does, and takes its lock.
func lockStore(t *testing.T, dir string) (*Store, func()) {
	t.Helper()
	st, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := st.Lock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st, unlock
}

// TestFlagNames: any name but those SetFlag refuses (empty, newline, NUL)
// round-trips through the lock file as it is, and a flag is only ever set
// or cleared by its own name: names holding output paths, spaces, tabs,
// carriage returns or any byte never run together or cancel each other.
func TestFlagNames(t *testing.T) {
	names := []string{
		"reload-pending",
		"reload-pending ",
		"reload-pending /usr/local/etc/haproxy/haproxy.cfg",
		"reload-pending /usr/local/etc/haproxy/haproxy.cfg.new",
		"reload-pending /usr/local/etc/haproxy",
		"reload-pending  /srv/with two spaces/haproxy.cfg",
		"reload-pending\t/tab",
		"reload-pending /cr\r",
		" ",
		"\r",
		"/usr/local/etc/haproxy/haproxy.cfg",
		"reload-pending /caf\u00e9/\xff\xfe not UTF-8",
		"reload-pending /" + strings.Repeat("long/", 1000) + "haproxy.cfg",
	}
	// Never set; each is a piece or a neighbour of a name above.
	others := []string{"reload-pending  ", "pending", "/usr/local/etc/haproxy/haproxy.cfg.new", "reload-pending /cr", "reload-pending /tab", "\t", "  "}

	dir := t.TempDir()
	st, unlock := lockStore(t, dir)
	for _, n := range names {
		if err := st.SetFlag(n, true); err != nil {
			t.Fatalf("SetFlag(%q): %v", n, err)
		}
	}
	unlock()
	// Each run (a store opened anew, as by another process) clears one
	// name and finds exactly the names not cleared yet set.
	for i := 0; i <= len(names); i++ {
		st, unlock := lockStore(t, dir)
		for j, n := range names {
			if got, want := st.Flag(n), j >= i; got != want {
				t.Fatalf("with %d of %d names cleared, Flag(%q) = %v, want %v", i, len(names), n, got, want)
			}
		}
		for _, n := range others {
			if st.Flag(n) {
				t.Fatalf("with %d of %d names cleared, Flag(%q) = true, but it was never set", i, len(names), n)
			}
		}
		if i < len(names) {
			if err := st.SetFlag(names[i], false); err != nil {
				t.Fatalf("SetFlag(%q, false): %v", names[i], err)
			}
		}
		unlock()
	}
	if b, _ := os.ReadFile(filepath.Join(dir, lockName)); len(b) != 0 {
		t.Fatalf("lock file holds %q after every flag was cleared", b)
	}
}

// TestFlagNamesRefused: a name that cannot be a line of the lock file is
// refused with an error saying why, leaves the flags as they were, and
// reads as set (the safe mistake).
func TestFlagNamesRefused(t *testing.T) {
	st := lockedStore(t, t.TempDir())
	if err := st.SetFlag("reload-pending", true); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, want string }{
		{"", "set flag: empty flag name"},
		{"reload-pending /etc/haproxy\n/haproxy.cfg", `set flag: flag name "reload-pending /etc/haproxy\n/haproxy.cfg" holds a newline or NUL, which flag names cannot`},
		{"reload-pending\n", `set flag: flag name "reload-pending\n" holds a newline or NUL, which flag names cannot`},
		{"reload-pending /a\x00b", `set flag: flag name "reload-pending /a\x00b" holds a newline or NUL, which flag names cannot`},
	} {
		for _, on := range []bool{true, false} {
			if err := st.SetFlag(tc.name, on); err == nil || err.Error() != tc.want {
				t.Errorf("SetFlag(%q, %v) = %v, want %q", tc.name, on, err, tc.want)
			}
		}
		if !st.Flag(tc.name) {
			t.Errorf("Flag(%q) = false, want true for a name that cannot be kept", tc.name)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(st.Dir(), lockName)); string(b) != "reload-pending\n" {
		t.Fatalf("lock file holds %q", b)
	}
}

// TestFlagsBounded: the flags are read whole up to maxFlagsSize, and
// refused beyond it, never cut short.
func TestFlagsBounded(t *testing.T) {
	st := lockedStore(t, t.TempDir())
	big := func(i int) string {
		return fmt.Sprintf("reload-pending /%d/%s", i, strings.Repeat("x", maxFlagsSize/4))
	}
	for i := range 3 {
		if err := st.SetFlag(big(i), true); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.SetFlag(big(3), true); err == nil || !strings.Contains(err.Error(), "more than the 1048576 the lock file holds") {
		t.Fatalf("SetFlag past the limit = %v, want an error saying so", err)
	}
	for i := range 3 {
		if !st.Flag(big(i)) {
			t.Fatalf("flag %d lost", i)
		}
	}
	if st.Flag(big(3)) {
		t.Fatal("flag past the limit set")
	}
	// A lock file grown past the limit by other means: flags read as set,
	// and cannot be changed.
	if _, err := st.lockFile.WriteAt([]byte(strings.Repeat("y", maxFlagsSize+1)), 0); err != nil {
		t.Fatal(err)
	}
	if !st.Flag("anything") {
		t.Fatal("Flag on an oversized lock file = false, want true")
	}
	if err := st.SetFlag("anything", false); err == nil || !strings.Contains(err.Error(), "larger than 1048576 bytes") {
		t.Fatalf("SetFlag on an oversized lock file = %v, want an error saying so", err)
	}
}
