package haproxy

// Benchmarks of the live path against a real HAProxy whose backend holds
// 1,000 servers: the runtime commands of one add and one cut, and the
// file work (Diff) and read-back (Verify) around them.

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// bigBackend is backend b with n servers (never contacted: no check).
func bigBackend(n int) string {
	var b strings.Builder
	b.WriteString(rr)
	for i := range n {
		fmt.Fprintf(&b, "    server s%04d 127.0.21.%d:%d\n", i, 100+i%100, 10000+i)
	}
	return b.String()
}

func BenchmarkApply1000(b *testing.B) {
	body := bigBackend(1000)
	l := startHAProxy(b, body)
	ctx := context.Background()
	for _, kw := range []string{"", "check inter 10s"} {
		with := body + "    server n 127.0.21.99:9 " + kw + "\n"
		add, err := Diff([]byte(l.config(body)), []byte(l.config(with)))
		if err != nil {
			b.Fatal(err)
		}
		cut, err := Diff([]byte(l.config(with)), []byte(l.config(body)))
		if err != nil {
			b.Fatal(err)
		}
		// On 2.6 a removed server stays retired: the next add revives it
		// (on 3.0 it is deleted and added afresh).
		opts := Options{Delete: true, Revive: func(string, Server) bool { return true }}
		name := "add"
		if kw != "" {
			name = "add-check"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if _, err := l.client.Apply(ctx, add, opts); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if _, err := l.client.Apply(ctx, cut, opts); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
		if kw != "" {
			continue
		}
		b.Run("remove", func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				if _, err := l.client.Apply(ctx, add, opts); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if _, err := l.client.Apply(ctx, cut, opts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("verify", func(b *testing.B) {
		cfg := []byte(l.config(body))
		for b.Loop() {
			if _, err := l.client.Verify(ctx, cfg, []string{"b"}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkDiff compares two files of n servers, one joining: after the
// last of them (names in order, as serf-hb renders a registry: one walk
// over both) or first (out of order: an index by name of each). Both
// files are parsed once, outside the loop, as a run's Parse memo has them.
func BenchmarkDiff(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		old := []byte(bigBackend(n))
		for _, join := range []struct{ order, name string }{{"ordered", "zz"}, {"unordered", "a"}} {
			new := []byte(bigBackend(n) + "    server " + join.name + " 127.0.21.99:9 check\n")
			b.Run(fmt.Sprintf("servers=%d/%s", n, join.order), func(b *testing.B) {
				Parse(old)
				Parse(new)
				for b.Loop() {
					if p, err := Diff(old, new); err != nil || len(p) != 1 || len(p[0].Add) != 1 {
						b.Fatalf("Diff = %+v, %v; want one add", p, err)
					}
				}
			})
		}
	}
}

// BenchmarkParse reads a file of n server lines written as the live
// suites' template writes them (check, inter, weight, downinter), without
// the memo: what a run pays for a file it has not read before; and the
// same file with a server line more, read from the first one's parse
// (reparse), which is what a run pays for the new file.
func BenchmarkParse(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		var sb strings.Builder
		sb.WriteString(rr)
		for i := range n {
			fmt.Fprintf(&sb, "    server down%05d 127.0.21.%d:%d check inter 300ms weight 1 downinter 10s\n", i, 100+i%100, 10000+i)
		}
		cfg := sb.String()
		b.Run(fmt.Sprintf("servers=%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(cfg)))
			b.ReportAllocs()
			for b.Loop() {
				parse(cfg)
			}
		})
		b.Run(fmt.Sprintf("servers=%d/names", n), func(b *testing.B) {
			b.SetBytes(int64(len(cfg)))
			b.ReportAllocs()
			for b.Loop() {
				parseNames(cfg)
			}
		})
		// The same file with one server line more in the middle, read
		// from the first one's parse, as Parse does in a run.
		mid := strings.Index(cfg, fmt.Sprintf("    server down%05d ", n/2))
		next := cfg[:mid] + "    server joined 127.0.21.99:9 check inter 300ms weight 1 downinter 10s\n" + cfg[mid:]
		prev := parse(cfg)
		b.Run(fmt.Sprintf("servers=%d/reparse", n), func(b *testing.B) {
			b.SetBytes(int64(len(next)))
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := reparse(cfg, prev, next); !ok {
					b.Fatal("reparse declined one server line more")
				}
			}
		})
	}
}
