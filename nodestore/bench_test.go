package nodestore

// Benchmarks for the registry operations one handler run does. The
// registries are written directly (no fsync per file, which would make a
// 10,000-node fixture take minutes) in the format Put writes. CI runs these
// in a smoke mode (-short, one iteration); docs/performance.md has the
// figures.

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// benchSizes are the registry sizes; -short (the smoke mode) leaves out
// 10,000.
func benchSizes() []int {
	if testing.Short() {
		return []int{100, 1000}
	}
	return []int{100, 1000, 10000}
}

// benchNode is registered node i of a benchmark registry.
func benchNode(i int) Node {
	i++ // no .0 host
	return Node{
		Name: fmt.Sprintf("node%05d", i),
		Addr: netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}),
		Role: "backend",
		Tags: map[string]string{"role": "backend", "port": "3000"},
	}
}

// benchStore returns a store of n nodes in a temp dir that lives as long
// as tb.
func benchStore(tb testing.TB, n int) *Store {
	tb.Helper()
	dir := tb.TempDir()
	for i := 0; i < n; i++ {
		nd := benchNode(i)
		data, err := encode(nd)
		if err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, nd.Name), data, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	st, err := Open(dir)
	if err != nil {
		tb.Fatal(err)
	}
	return st
}

// BenchmarkList is the registry read every changing run does: from the
// node files alone (no index yet, or every file changed), and with every
// file in the index.
func BenchmarkList(b *testing.B) {
	for _, n := range benchSizes() {
		for _, indexed := range []bool{false, true} {
			st := benchStore(b, n)
			if indexed {
				st.now = func() time.Time { return time.Now().Add(time.Hour) }
				unlock, err := st.Lock(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				_, _, err = st.List() // writes the index
				unlock()
				if err != nil {
					b.Fatal(err)
				}
			}
			b.Run(fmt.Sprintf("nodes=%d/indexed=%v", n, indexed), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					nodes, bad, err := st.List()
					if err != nil || bad != nil {
						b.Fatal(err, bad)
					}
					if len(nodes) != n {
						b.Fatalf("List returned %d nodes, want %d", len(nodes), n)
					}
				}
			})
		}
	}
}

// BenchmarkDecode is the parse of one node file, without the I/O.
func BenchmarkDecode(b *testing.B) {
	nd := benchNode(1)
	data, err := encode(nd)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decode(nd.Name, data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLock takes and releases the registry lock.
func BenchmarkLock(b *testing.B) {
	for _, n := range benchSizes() {
		st := benchStore(b, n)
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				unlock, err := st.Lock(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				unlock()
			}
		})
	}
}

// BenchmarkPut registers a node whose entry changes every time: temp
// file, fsync, rename, fsync of the directory. It costs the same at any
// registry size.
func BenchmarkPut(b *testing.B) {
	st := benchStore(b, 100)
	nd := benchNode(1000)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		nd.Addr = netip.AddrFrom4([4]byte{10, 255, byte(i >> 8), byte(i)})
		changed, _, err := st.Put(nd)
		if err != nil {
			b.Fatal(err)
		}
		if !changed {
			b.Fatal("Put reported no change")
		}
	}
}
