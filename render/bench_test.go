package render

// Benchmarks for the render half of a handler run. CI runs these in a
// smoke mode (-short, one iteration); docs/performance.md has the figures.

import (
	"bytes"
	"fmt"
	"path/filepath"
	"testing"
)

// benchSizes are the registry sizes; -short (the smoke mode) leaves out
// 10,000.
func benchSizes() []int {
	if testing.Short() {
		return []int{100, 1000}
	}
	return []int{100, 1000, 10000}
}

// benchData is what the handler passes for a registry of n backends.
func benchData(n int) Data {
	d := Data{Role: "backend", Self: Self{Name: "lb", Role: "balancer", Tags: map[string]string{"role": "balancer"}}}
	for i := 1; i <= n; i++ {
		d.Nodes = append(d.Nodes, Node{
			Name: fmt.Sprintf("node%05d", i),
			Addr: fmt.Sprintf("10.%d.%d.%d", byte(i>>16), byte(i>>8), byte(i)),
			Role: "backend",
			Tags: map[string]string{"role": "backend", "port": "3000"},
		})
	}
	return d
}

// BenchmarkDefault parses the embedded template, which every run does once.
func BenchmarkDefault(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Default(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheck is the strict check's share of BenchmarkDefault: lexing
// the embedded template and checking its references.
func BenchmarkCheck(b *testing.B) {
	b.ReportAllocs()
	src := string(defaultTemplate)
	for b.Loop() {
		segs := lex(src)
		if errs := hangs(segs); errs != nil {
			b.Fatal(errs)
		}
		if _, _, errs := check(segs); errs != nil {
			b.Fatal(errs)
		}
	}
}

// BenchmarkExecute renders the default template over n nodes.
func BenchmarkExecute(b *testing.B) {
	tpl, err := Default()
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range benchSizes() {
		d := benchData(n)
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) { benchExecute(b, tpl, d, n) })
	}
}

// benchExecute renders d with tpl b.N times, and checks the last render
// has n server lines.
func benchExecute(b *testing.B, tpl *Template, d Data, n int) {
	b.ReportAllocs()
	var out []byte
	var err error
	for b.Loop() {
		if out, err = tpl.Execute(d); err != nil {
			b.Fatal(err)
		}
	}
	if got := bytes.Count(out, []byte("\n    server ")); got != n {
		b.Fatalf("rendered %d server lines, want %d", got, n)
	}
}

// BenchmarkExecuteRoles renders the default template over n nodes of
// three selected roles: a backend per role, filled from by_role.
func BenchmarkExecuteRoles(b *testing.B) {
	tpl, err := Default()
	if err != nil {
		b.Fatal(err)
	}
	roles := []string{"web", "api", "admin"}
	for _, n := range benchSizes() {
		d := benchData(n)
		d.Role, d.Roles = "", roles
		for i := range d.Nodes {
			d.Nodes[i].Role = roles[i%len(roles)]
		}
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) { benchExecute(b, tpl, d, n) })
	}
}

// BenchmarkInstall stages and commits a changed file of n servers with no check:
// compare, stage, fsync, rename, fsync of the directory.
func BenchmarkInstall(b *testing.B) {
	tpl, err := Default()
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range benchSizes() {
		// Two renders that differ by one server, installed in turn.
		d := benchData(n + 1)
		one, err := tpl.Execute(d)
		if err != nil {
			b.Fatal(err)
		}
		d.Nodes = d.Nodes[:n]
		two, err := tpl.Execute(d)
		if err != nil {
			b.Fatal(err)
		}
		path := filepath.Join(b.TempDir(), "haproxy.cfg")
		// Counted across the calls of the sub-benchmark (-count): each
		// install must change the file the last one left.
		i := 0
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				content := one
				if i++; i%2 == 0 {
					content = two
				}
				p, err := Stage(path, content)
				if err != nil {
					b.Fatal(err)
				}
				res, err := p.Commit()
				if err != nil {
					b.Fatal(err)
				}
				if res != Installed {
					b.Fatalf("Install = %v, want %v", res, Installed)
				}
			}
		})
	}
}
