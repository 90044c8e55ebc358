package nodestore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"syscall"
	"testing"
)

// list lists st and fails the test on any error or bad entry.
func list(t *testing.T, st *Store) []Node {
	t.Helper()
	nodes, bad, err := st.List()
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bad {
		t.Errorf("List: %v", b)
	}
	if t.Failed() {
		t.FailNow()
	}
	return nodes
}

// TestListManyNodes covers List's fan-out: a registry of several chunks is
// read by several goroutines, and the nodes still come back complete and
// sorted, the bad entries too.
func TestListManyNodes(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		t.Log("GOMAXPROCS is 1: List reads with one goroutine")
	}
	const n = 3*listChunk + 7
	st := benchStore(t, n)
	nodes := list(t, st)
	if len(nodes) != n {
		t.Fatalf("List returned %d nodes, want %d", len(nodes), n)
	}
	for i, nd := range nodes {
		want := benchNode(i)
		if nd.Name != want.Name || nd.Addr != want.Addr || nd.Role != want.Role || nd.Tags["port"] != "3000" {
			t.Fatalf("node %d = %+v, want %+v", i, nd, want)
		}
	}

	// Garbled entries in different chunks: every one is reported, in name
	// order (ReadDir's is the file system's), and every other node is
	// still listed.
	garbled := []int{5, 2*listChunk + 1, 3 * listChunk}
	for _, i := range garbled {
		if err := os.WriteFile(filepath.Join(st.Dir(), benchNode(i).Name), []byte("garbage\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	nodes, bad, err := st.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != n-len(garbled) {
		t.Errorf("List returned %d nodes, want %d", len(nodes), n-len(garbled))
	}
	if len(bad) != len(garbled) {
		t.Fatalf("List returned %d bad entries, want %d: %v", len(bad), len(garbled), bad)
	}
	for j, i := range garbled {
		if want := filepath.Join(st.Dir(), benchNode(i).Name); bad[j].Path != want {
			t.Errorf("bad entry %d is %s, want %s", j, bad[j].Path, want)
		}
	}
}

// shortStore is a store in a directory with a short path, where a unix
// socket can be made (sun_path holds 108 bytes).
func shortStore(t *testing.T) *Store {
	t.Helper()
	dir, err := os.MkdirTemp("", "hb")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	st, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestListStrayEntries: an entry that is not a node file is returned as a
// bad entry naming it, saying what is wrong and how to get it out of the
// way, while the registry's nodes are still listed.
func TestListStrayEntries(t *testing.T) {
	file := func(content string) func(t *testing.T, p string) {
		return func(t *testing.T, p string) {
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	mkdir := func(t *testing.T, p string) {
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	symlinkTo := func(target string) func(t *testing.T, p string) {
		return func(t *testing.T, p string) {
			if target != "" {
				file("web7 10.0.0.7\n")(t, target)
			} else {
				target = filepath.Join(filepath.Dir(p), "missing")
			}
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
		}
	}
	cases := []struct {
		kind, name string // what the entry is, and its name
		setup      func(t *testing.T, p string)
		want       string // in the error, between the path and the hint
	}{
		{"text file", "README", file("This directory is serf-hb's registry.\n"), `first line "This directory is serf-hb's registry." is not "NAME ADDR"`},
		{"editor backup", "web1~", file("web1 10.0.0.1\n"), "not a node name: character '~' at byte 4"},
		{"binary file", "web1.swp", file("\x00\x01\x02"), `first line "\x00\x01\x02" is not "NAME ADDR"`},
		{"space in name", "web 1", file("web 1 10.0.0.1\n"), "not a node name: character ' ' at byte 3"},
		{"empty file", "web9", file(""), "file is empty"},
		{"one field", "web8", file("web8\n"), `first line "web8" is not "NAME ADDR"`},
		{"bad address", "web7", file("web7 10.0.0.7.1\n"), `address "10.0.0.7.1" is not an IP address`},
		{"names another node", "web6", file("web5 10.0.0.5\n"), `file names node "web5"`},
		{"zone", "web5", file("web5 fe80::1%eth0\n"), "address fe80::1%eth0 has a zone"},
		{"bad second line", "web4", file("web4 10.0.0.4\n{\"role\":\n"), "second line: "},
		{"too large", "big", file("big 10.0.0.9\n" + strings.Repeat("#", maxFileSize)), "is larger than 65536 bytes, not a node file"},
		{"directory", "stray", mkdir, "is a directory, not a node file"},
		{"directory, bad name", "lost+found", mkdir, "not a node name: character '+' at byte 4"},
		{"symlink", "web7", symlinkTo(filepath.Join(t.TempDir(), "web7")), "is a symlink, not a node file"},
		{"dangling symlink", "web3", symlinkTo(""), "is a symlink, not a node file"},
		{"fifo", "fifo", func(t *testing.T, p string) {
			if err := syscall.Mkfifo(p, 0o644); err != nil {
				t.Fatal(err)
			}
		}, "is a device, FIFO or socket, not a node file"},
		{"socket", "sock", func(t *testing.T, p string) {
			l, err := net.Listen("unix", p)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
		}, "is a device, FIFO or socket, not a node file"},
	}
	for _, tc := range cases {
		t.Run(tc.kind, func(t *testing.T) {
			st := shortStore(t)
			web1 := node("web1", "10.0.0.1")
			if _, _, err := st.Put(web1); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(st.Dir(), tc.name)
			tc.setup(t, p)
			nodes, bad, err := st.List()
			if err != nil {
				t.Fatal(err)
			}
			if len(nodes) != 1 || !reflect.DeepEqual(nodes[0], web1) {
				t.Errorf("List = %v, want web1 still listed", nodes)
			}
			if len(bad) != 1 {
				t.Fatalf("List returned bad entries %v, want only %s", bad, p)
			}
			if bad[0].Path != p {
				t.Errorf("bad entry is %q, want %q", bad[0].Path, p)
			}
			q := shellQuote(p)
			wantMsg := "registry entry " + q + ": " + tc.want
			hint := "; hint: move it out of the registry: mv " + q + " /tmp/"
			if msg := bad[0].Error(); !strings.HasPrefix(msg, wantMsg) || !strings.HasSuffix(msg, hint) {
				t.Errorf("error is\n\t%s\nwant it to start\n\t%s\nand end\n\t%s", msg, wantMsg, hint)
			}
		})
	}
}

// TestEntryErrorHint: the hint is a command that works as it is pasted.
func TestEntryErrorHint(t *testing.T) {
	garbled := errors.New("file is empty")
	for _, tc := range []struct {
		path string
		err  error
		want string
	}{
		{"/nodes/web1~", garbled, "registry entry /nodes/web1~: file is empty; hint: move it out of the registry: mv /nodes/web1~ /tmp/"},
		{"/nodes/web 1", garbled, "registry entry '/nodes/web 1': file is empty; hint: move it out of the registry: mv '/nodes/web 1' /tmp/"},
		{"/nodes/it's", garbled, `registry entry '/nodes/it'\''s': file is empty; hint: move it out of the registry: mv '/nodes/it'\''s' /tmp/`},
		{"/nodes/~web", garbled, "registry entry /nodes/~web: file is empty; hint: move it out of the registry: mv /nodes/~web /tmp/"},
		{"/nodes/$(id)", garbled, "registry entry '/nodes/$(id)': file is empty; hint: move it out of the registry: mv '/nodes/$(id)' /tmp/"},
		{"~/web", garbled, "registry entry '~/web': file is empty; hint: move it out of the registry: mv '~/web' /tmp/"},
		{"-nodes/web1~", garbled, "registry entry ./-nodes/web1~: file is empty; hint: move it out of the registry: mv ./-nodes/web1~ /tmp/"},
		{"/nodes/web9", fmt.Errorf("open: %w", syscall.EACCES),
			"registry entry /nodes/web9: open: permission denied; hint: make it readable (chmod a+r /nodes/web9) or move it out of the registry: mv /nodes/web9 /tmp/"},
	} {
		e := &EntryError{Path: tc.path, Err: tc.err}
		if got := e.Error(); got != tc.want {
			t.Errorf("EntryError{%q, %q}.Error() =\n\t%s\nwant\n\t%s", tc.path, tc.err, got, tc.want)
		}
		if !errors.Is(e, tc.err) {
			t.Errorf("EntryError{%q, %q} does not wrap its error", tc.path, tc.err)
		}
	}
}

// TestEntryErrorOrNot: an error reading an entry makes it a bad entry only
// when the entry is at fault; anything else (here: out of file
// descriptors, which root can meet as well as anyone) fails the List, as
// leaving a node out for it would drop a server. As root, a file's
// permissions never deny a read, so the permission case is built here
// rather than in the registry.
func TestEntryErrorOrNot(t *testing.T) {
	p := "/nodes/web1"
	for _, tc := range []struct {
		err      error
		entryErr string // "": not the entry's fault
	}{
		{&os.PathError{Op: "open", Path: p, Err: syscall.EACCES}, "open: permission denied"},
		{&os.PathError{Op: "read", Path: p, Err: syscall.EIO}, "read: input/output error"},
		{&kindError{kindDir}, "is a directory, not a node file"},
		{errTooLarge, "is larger than 65536 bytes, not a node file"},
		{&os.PathError{Op: "open", Path: p, Err: syscall.EMFILE}, ""},
		{&os.PathError{Op: "fstat", Path: p, Err: syscall.ENOMEM}, ""},
		{errors.New("something else"), ""},
	} {
		bad, err := entryError(p, tc.err)
		switch {
		case tc.entryErr == "" && (bad != nil || err != tc.err):
			t.Errorf("entryError(%v) = %v, %v; want the error as it is", tc.err, bad, err)
		case tc.entryErr != "" && (bad == nil || err != nil || bad.Path != p || bad.Err.Error() != tc.entryErr):
			t.Errorf("entryError(%v) = %#v, %v; want an EntryError %q", tc.err, bad, err, tc.entryErr)
		}
	}
}

// TestListRegistryFails: a registry that cannot be read fails the List as
// a whole, with neither nodes nor bad entries.
func TestListRegistryFails(t *testing.T) {
	for name, breakIt := range map[string]func(dir string) error{
		"removed":          os.RemoveAll,
		"replaced by file": func(dir string) error { os.RemoveAll(dir); return os.WriteFile(dir, nil, 0o644) },
	} {
		t.Run(name, func(t *testing.T) {
			st := newStore(t)
			if _, _, err := st.Put(node("web1", "10.0.0.1")); err != nil {
				t.Fatal(err)
			}
			if err := breakIt(st.Dir()); err != nil {
				t.Fatal(err)
			}
			nodes, bad, err := st.List()
			if err == nil || nodes != nil || bad != nil {
				t.Fatalf("List = %v, %v, %v; want only an error", nodes, bad, err)
			}
			if !strings.Contains(err.Error(), st.Dir()) {
				t.Errorf("error %q does not name the registry", err)
			}
		})
	}
}

func TestListIgnoresDotfiles(t *testing.T) {
	st := newStore(t)
	if _, _, err := st.Put(node("web1", "10.0.0.1")); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{".lock", ".web112345", ".index", ".README", ".web1~", ".web 1"} {
		if err := os.WriteFile(filepath.Join(st.Dir(), f), []byte("junk"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(st.Dir(), ".git"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("web1", filepath.Join(st.Dir(), ".web2")); err != nil {
		t.Fatal(err)
	}
	if nodes := list(t, st); len(nodes) != 1 {
		t.Fatalf("List = %v; want only web1", nodes)
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
	list(t, st)
	if _, err := os.Stat(stale); err != nil {
		t.Fatalf("List without the lock removed a temp file: %v", err)
	}
	unlock, err := st.Lock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	list(t, st)
	unlock()
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatalf("stale temp file survived a locked List: %v", err)
	}
}
