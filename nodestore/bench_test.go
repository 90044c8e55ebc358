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
	"sort"
	"sync"
	"sync/atomic"
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

// BenchmarkPutAll is a start-up batch: n new nodes put into an empty
// registry and made durable (PutAll, then Sync). method is how the node
// files' data is flushed: put16 is the way before batch.go, sixteen Puts
// at a time, each fsyncing its file (the baseline, in the same run);
// oneByOne the same one after the other; each an fsync of every file
// after all are written; syncfs one syncfs(2); auto what PutAll does.
func BenchmarkPutAll(b *testing.B) {
	defer func(m flushMethod) { flushWith = m }(flushWith)
	sizes := []int{10, 100, 1000, 10000}
	if testing.Short() {
		sizes = []int{10, 100}
	}
	methods := []struct {
		name string
		m    flushMethod
	}{{"put16", -1}, {"oneByOne", flushOneByOne}, {"each", flushEach}, {"syncfs", flushSyncFS}, {"auto", flushAuto}}
	for _, n := range sizes {
		nodes := make([]Node, n)
		for i := range nodes {
			nodes[i] = benchNode(i)
		}
		for _, m := range methods {
			if m.name == "oneByOne" && n > 1000 {
				continue // put16's time, at best; minutes at worst
			}
			b.Run(fmt.Sprintf("nodes=%d/method=%s", n, m.name), func(b *testing.B) {
				flushWith = m.m
				for i := 0; i < b.N; i++ {
					b.StopTimer()
					st, err := Open(filepath.Join(b.TempDir(), "nodes"))
					if err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
					if m.m < 0 {
						putConcurrently(st, nodes)
					} else {
						for _, r := range st.PutAll(nodes) {
							if r.Err != nil || !r.Changed {
								b.Fatal(r)
							}
						}
					}
					if err := st.Sync(); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// putConcurrently is PutAll before batch.go: sixteen Puts at a time.
func putConcurrently(st *Store, nodes []Node) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(nodes) {
					return
				}
				if _, _, err := st.Put(nodes[i]); err != nil {
					panic(err)
				}
			}
		})
	}
	wg.Wait()
}

// BenchmarkListFloor is the least a List that notices a node file edited
// in place can do: read the directory, sort it, and stat every entry
// (what an indexed List does before it decodes anything). Next to
// BenchmarkList/indexed=true it shows what decoding adds.
func BenchmarkListFloor(b *testing.B) {
	for _, n := range benchSizes() {
		st := benchStore(b, n)
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				d, err := os.Open(st.dir)
				if err != nil {
					b.Fatal(err)
				}
				names, err := d.Readdirnames(-1)
				if err != nil {
					b.Fatal(err)
				}
				sort.Strings(names)
				for _, name := range names {
					if _, _, err := statAt(int(d.Fd()), name, name); err != nil {
						b.Fatal(err)
					}
				}
				d.Close()
			}
		})
	}
}
