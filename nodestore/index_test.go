package nodestore

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// lockedList lists st under its lock, as an event run does.
func lockedList(t *testing.T, st *Store) []Node {
	t.Helper()
	unlock, err := st.Lock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	return list(t, st)
}

func readIndexFile(t *testing.T, st *Store) map[string]indexEntry {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(st.Dir(), indexName))
	if err != nil {
		t.Fatal(err)
	}
	recs, err := parseIndex(b)
	if err != nil {
		t.Fatal(err)
	}
	return byName(recs)
}

func byName(recs []indexRecord) map[string]indexEntry {
	idx := map[string]indexEntry{}
	for _, r := range recs {
		idx[string(r.name)] = r.indexEntry
	}
	return idx
}

// aged makes st date its index entries an hour ahead: every file looks
// old enough to cache.
func aged(st *Store) *Store {
	st.now = func() time.Time { return time.Now().Add(time.Hour) }
	return st
}

func TestIndexFreshFilesNotCached(t *testing.T) {
	st := newStore(t)
	for _, n := range []Node{node("web1", "10.0.0.1"), node("web2", "10.0.0.2")} {
		if _, _, err := st.Put(n); err != nil {
			t.Fatal(err)
		}
	}
	// Just written: within racyMargin, so nothing is cached and no index
	// is written.
	if nodes := lockedList(t, st); len(nodes) != 2 {
		t.Fatalf("List = %v", nodes)
	}
	if _, err := os.Stat(filepath.Join(st.Dir(), indexName)); !os.IsNotExist(err) {
		t.Fatalf("index written for files changed within %v: %v", racyMargin, err)
	}
}

func TestIndexServesUnchangedFiles(t *testing.T) {
	st := aged(newStore(t))
	for _, n := range []Node{node("web1", "10.0.0.1"), node("web2", "10.0.0.2")} {
		if _, _, err := st.Put(n); err != nil {
			t.Fatal(err)
		}
	}
	want := lockedList(t, st)
	idx := readIndexFile(t, st)
	if len(idx) != 2 {
		t.Fatalf("index holds %d entries, want 2", len(idx))
	}
	for _, n := range want {
		data, _ := os.ReadFile(filepath.Join(st.Dir(), n.Name))
		if !bytes.Equal(idx[n.Name].data, data) {
			t.Errorf("index entry %s = %q, want the file's %q", n.Name, idx[n.Name].data, data)
		}
	}

	// Proof that List reads the index and not the file: an entry whose
	// key still matches but whose bytes were doctored is what List
	// returns.
	e := idx["web1"]
	e.data = []byte("web1 10.9.9.9\n")
	idx["web1"] = e
	names, entries := []string{"web1", "web2"}, []indexEntry{idx["web1"], idx["web2"]}
	if err := st.writeIndex(names, entries); err != nil {
		t.Fatal(err)
	}
	nodes := list(t, st)
	if nodes[0].Addr.String() != "10.9.9.9" || nodes[1].Addr != want[1].Addr {
		t.Fatalf("List = %v: the index was not used", nodes)
	}
}

func TestIndexSeesChanges(t *testing.T) {
	st := aged(newStore(t))
	for _, n := range []Node{node("web1", "10.0.0.1"), node("web2", "10.0.0.2"), node("web3", "10.0.0.3")} {
		if _, _, err := st.Put(n); err != nil {
			t.Fatal(err)
		}
	}
	lockedList(t, st)
	if idx := readIndexFile(t, st); len(idx) != 3 {
		t.Fatalf("index holds %d entries, want 3", len(idx))
	}
	// The aged clock would cache a file changed in the same tick of the
	// file system's clock as its entry: step past any tick first.
	time.Sleep(50 * time.Millisecond)

	// In place, same size: only the timestamps tell.
	p := filepath.Join(st.Dir(), "web1")
	data, _ := os.ReadFile(p)
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(bytes.Replace(data, []byte("10.0.0.1"), []byte("10.0.0.7"), 1), 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	// Replaced by a new file, as Put does; and one removed.
	if _, _, err := st.Put(node("web2", "10.0.0.8")); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Remove("web3"); err != nil {
		t.Fatal(err)
	}
	got := lockedList(t, st)
	want := []Node{node("web1", "10.0.0.7"), node("web2", "10.0.0.8")}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("List = %v, want %v", got, want)
	}
	idx := readIndexFile(t, st)
	if _, ok := idx["web3"]; ok || len(idx) != 2 {
		t.Fatalf("index after a removal holds %d entries: %v", len(idx), idx)
	}
	for _, n := range want {
		data, _ := os.ReadFile(filepath.Join(st.Dir(), n.Name))
		if !bytes.Equal(idx[n.Name].data, data) {
			t.Errorf("index entry %s = %q, want the file's %q", n.Name, idx[n.Name].data, data)
		}
	}
}

// TestIndexWithBadEntries: bad entries do not hold the index back, never
// enter it, and a cached node file that turns bad leaves it.
func TestIndexWithBadEntries(t *testing.T) {
	st := aged(newStore(t))
	for _, n := range []Node{node("web1", "10.0.0.1"), node("web2", "10.0.0.2"), node("web3", "10.0.0.3")} {
		if _, _, err := st.Put(n); err != nil {
			t.Fatal(err)
		}
	}
	// Stray entries whose names and contents could pass for node files'.
	if err := os.WriteFile(filepath.Join(st.Dir(), "web1~"), []byte("web1 10.0.0.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(st.Dir(), "README"), []byte("web1 10.0.0.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	lockedListBad := func(wantNodes, wantBad []string) {
		t.Helper()
		unlock, err := st.Lock(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer unlock()
		nodes, bad, err := st.List()
		if err != nil {
			t.Fatal(err)
		}
		var gotNodes, gotBad []string
		for _, n := range nodes {
			gotNodes = append(gotNodes, n.Name)
		}
		for _, b := range bad {
			gotBad = append(gotBad, filepath.Base(b.Path))
		}
		if !reflect.DeepEqual(gotNodes, wantNodes) || !reflect.DeepEqual(gotBad, wantBad) {
			t.Fatalf("List = nodes %q, bad %q; want %q, %q", gotNodes, gotBad, wantNodes, wantBad)
		}
		idx := readIndexFile(t, st)
		var indexed []string
		for _, n := range wantNodes {
			if _, ok := idx[n]; ok {
				indexed = append(indexed, n)
			}
		}
		if len(idx) != len(wantNodes) || !reflect.DeepEqual(indexed, wantNodes) {
			t.Fatalf("index holds %d entries, want exactly the nodes %q", len(idx), wantNodes)
		}
	}
	lockedListBad([]string{"web1", "web2", "web3"}, []string{"README", "web1~"})
	lockedListBad([]string{"web1", "web2", "web3"}, []string{"README", "web1~"}) // again, with the index
	time.Sleep(50 * time.Millisecond)                                            // past the file system's clock tick (TestIndexSeesChanges)

	// A cached node file garbled, another replaced by a directory: both
	// are bad entries now, and out of the index.
	if err := os.WriteFile(filepath.Join(st.Dir(), "web2"), []byte("web2 10.0.0.2.2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(st.Dir(), "web3")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(st.Dir(), "web3"), 0o755); err != nil {
		t.Fatal(err)
	}
	lockedListBad([]string{"web1"}, []string{"README", "web1~", "web2", "web3"})

	// Repaired, they are nodes again, and cached again.
	if _, _, err := st.Put(node("web2", "10.0.0.2")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(st.Dir(), "web3")); err != nil {
		t.Fatal(err)
	}
	lockedListBad([]string{"web1", "web2"}, []string{"README", "web1~"})
}

func TestIndexBadOrUnlocked(t *testing.T) {
	st := aged(newStore(t))
	for _, n := range []Node{node("web1", "10.0.0.1"), node("web2", "10.0.0.2")} {
		if _, _, err := st.Put(n); err != nil {
			t.Fatal(err)
		}
	}
	// Without the lock, List never writes the index.
	want := list(t, st)
	if _, err := os.Stat(filepath.Join(st.Dir(), indexName)); !os.IsNotExist(err) {
		t.Fatalf("unlocked List wrote the index: %v", err)
	}
	lockedList(t, st)
	good, err := os.ReadFile(filepath.Join(st.Dir(), indexName))
	if err != nil {
		t.Fatal(err)
	}
	// Torn, flipped, empty, longer: all ignored, the files read, and the
	// index written anew by a locked List.
	flipped := bytes.Clone(good)
	flipped[len(flipped)/2] ^= 1
	for name, b := range map[string][]byte{
		"torn":    good[:len(good)/2],
		"flipped": flipped,
		"empty":   nil,
		"longer":  append(bytes.Clone(good), 0),
		"foreign": []byte("web1 10.6.6.6\n"),
	} {
		t.Run(name, func(t *testing.T) {
			if err := os.WriteFile(filepath.Join(st.Dir(), indexName), b, 0o644); err != nil {
				t.Fatal(err)
			}
			if got := lockedList(t, st); !reflect.DeepEqual(got, want) {
				t.Fatalf("List = %v, want %v", got, want)
			}
			if idx := readIndexFile(t, st); len(idx) != 2 {
				t.Fatalf("index rewritten with %d entries", len(idx))
			}
		})
	}
}

func TestIndexRoundTrip(t *testing.T) {
	names := []string{"a", "node00042", "web1"}
	entries := []indexEntry{
		{fileKey{ino: 1 << 40, size: 0, mtime: 0, ctime: 1}, []byte{}},
		{fileKey{ino: 7, size: 3, mtime: 5, ctime: 6}, []byte("x\x00y")},
		{fileKey{ino: 1, size: 20, mtime: 1700000000123456789, ctime: 1700000000987654321}, []byte("web1 10.0.0.1\n{}\n")},
	}
	recs, err := parseIndex(appendIndex(nil, names, entries))
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(names) {
		t.Fatalf("%d entries, want %d", len(recs), len(names))
	}
	for i, name := range names {
		if r := recs[i]; string(r.name) != name || r.key != entries[i].key || !bytes.Equal(r.data, entries[i].data) {
			t.Errorf("record %d = %q %+v, want %q %+v", i, r.name, r.indexEntry, name, entries[i])
		}
	}
	// The lookup walks the records with the sorted listing: names out of
	// order, or twice, make the index unusable.
	for _, bad := range [][]string{{"b", "a", "c"}, {"a", "a", "c"}} {
		if _, err := parseIndex(appendIndex(nil, bad, entries)); err == nil {
			t.Errorf("index with names %q accepted", bad)
		}
	}
	cur := indexCursor{recs: recs}
	cur.seek("node")
	if cur.find("a") != nil || cur.find("node00042") == nil || cur.find("node5") != nil || cur.find("web1") == nil || cur.find("zz") != nil {
		t.Error("cursor finds the wrong entries")
	}
}

// FuzzParseIndex: no input makes parseIndex panic, and whatever it accepts
// survives being written and parsed again.
func FuzzParseIndex(f *testing.F) {
	f.Add(appendIndex(nil, []string{"web1"}, []indexEntry{{fileKey{1, 2, 3, 4}, []byte("web1 10.0.0.1\n")}}))
	f.Add(appendIndex(nil, nil, nil))
	f.Add([]byte(indexMagic + "\xff\xff\xff\xff\x0f"))
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, err := parseIndex(b)
		if err != nil {
			return
		}
		names := make([]string, len(recs))
		entries := make([]indexEntry, len(recs))
		for i, r := range recs {
			names[i], entries[i] = string(r.name), r.indexEntry
		}
		again, err := parseIndex(appendIndex(nil, names, entries))
		if err != nil {
			t.Fatalf("reparse: %v", err)
		}
		if len(again) != len(recs) {
			t.Fatalf("%d records, then %d", len(recs), len(again))
		}
		for i, r := range recs {
			if a := again[i]; !bytes.Equal(a.name, r.name) || a.key != r.key || !bytes.Equal(a.data, r.data) {
				t.Fatalf("record %d: %+v, then %+v", i, r, a)
			}
		}
	})
}
