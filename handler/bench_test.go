package handler

// Benchmarks for the stdin parser and for whole in-process runs. CI runs
// them in a smoke mode (scripts/bench.sh --smoke: -short, one iteration,
// no thresholds); docs/performance.md has the figures, and scripts/bench.sh
// times whole processes.

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/serf-hb/serf-hb/handler/serfevent"
)

// benchSizes are the registry sizes; -short (the smoke mode) leaves out
// 10,000, whose fixture alone takes seconds to write.
func benchSizes() []int {
	if testing.Short() {
		return []int{100, 1000}
	}
	return []int{100, 1000, 10000}
}

// benchJoin is the member line of the node every benchmarked run adds.
const benchJoin = "bench-join\t10.255.255.1\tbackend\tport=3000,role=backend\n"

// benchLine is stdin line i of a big event, in the shape Serf writes.
func benchLine(i int) string {
	return fmt.Sprintf("node%05d\t10.%d.%d.%d\tbackend\trole=backend,port=3000,dc=eu-west-1\n", i, byte(i>>16), byte(i>>8), byte(i))
}

// BenchmarkReadMembers parses one event of n member lines (a coalesced
// start-up burst).
func BenchmarkReadMembers(b *testing.B) {
	for _, n := range benchSizes() {
		var sb strings.Builder
		for i := 1; i <= n; i++ {
			sb.WriteString(benchLine(i))
		}
		in := sb.String()
		b.Run(fmt.Sprintf("lines=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				members, bad, err := serfevent.ReadMembers(strings.NewReader(in))
				if err != nil || len(bad) > 0 || len(members) != n {
					b.Fatalf("serfevent.ReadMembers: %d members, %d bad, %v; want %d members", len(members), len(bad), err, n)
				}
			}
		})
	}
}

// benchRegistry writes a registry of n nodes the way serf-hb writes them,
// without an fsync per file, and renders its output once, so that a run
// starts from the steady state: the output matches the registry, whose
// index holds every node.
func benchRegistry(b *testing.B, n int) (nodes, output string) {
	b.Helper()
	dir := b.TempDir()
	nodes, output = filepath.Join(dir, "nodes"), filepath.Join(dir, "haproxy.cfg")
	if err := os.Mkdir(nodes, 0o755); err != nil {
		b.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("node%05d", i)
		data := fmt.Sprintf("%s 10.%d.%d.%d\n{\"role\":\"backend\",\"tags\":{\"port\":\"3000\",\"role\":\"backend\"}}\n", name, byte(i>>16), byte(i>>8), byte(i))
		if err := os.WriteFile(filepath.Join(nodes, name), []byte(data), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	// A registry in service is mostly files written long ago, which the
	// registry's index caches once they are a second old (nodestore's
	// racyMargin): wait that out, so that this render writes the index.
	time.Sleep(1100 * time.Millisecond)
	if err := Render(context.Background(), benchConfig(nodes, output, ""), RenderOptions{}); err != nil {
		b.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(nodes, ".index")); n > 0 && err != nil {
		b.Fatalf("no registry index after the first render: %v", err)
	}
	return nodes, output
}

// benchConfig is a handler run as serf agent makes it: a member-join with
// the given stdin, reload "true", no check.
func benchConfig(nodes, output, stdin string) Config {
	env := map[string]string{"SERF_EVENT": "member-join", "SERF_SELF_NAME": "lb", "SERF_SELF_ROLE": "balancer"}
	return Config{
		NodesDir: nodes, Output: output, Roles: []string{"backend"}, Reload: "true",
		LockTimeout: time.Minute, CheckTimeout: time.Minute, ReloadTimeout: time.Minute, RPCTimeout: time.Second, ReconcileTimeout: time.Second,
		Stdin: strings.NewReader(stdin), Stdout: io.Discard, Stderr: io.Discard,
		Getenv:  func(k string) string { return env[k] },
		Environ: func() []string { return []string{"SERF_TAG_ROLE=balancer"} },
	}
}

// BenchmarkHandle is whole runs in process, over one registry per size.
//
// unchanged: a registered backend joins again with the same address and
// tags, so nothing is written and nothing is reloaded; the registry is
// still read and the output rendered and compared.
//
// join: a new backend joins, so the run registers it, renders, installs
// the new file and runs the reload command ("true"). Putting the state
// back between iterations is not timed.
func BenchmarkHandle(b *testing.B) {
	for _, n := range append([]int{0}, benchSizes()...) {
		nodes, output := benchRegistry(b, n)
		base, err := os.ReadFile(output)
		if err != nil {
			b.Fatal(err)
		}
		if n > 0 {
			line := "node00001\t10.0.0.1\tbackend\tport=3000,role=backend\n"
			b.Run(fmt.Sprintf("unchanged/nodes=%d", n), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if err := Handle(context.Background(), benchConfig(nodes, output, line)); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
		b.Run(fmt.Sprintf("join/nodes=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				if err := os.Remove(filepath.Join(nodes, "bench-join")); err != nil && !os.IsNotExist(err) {
					b.Fatal(err)
				}
				if err := os.WriteFile(output, base, 0o644); err != nil {
					b.Fatal(err)
				}
				cfg := benchConfig(nodes, output, benchJoin)
				b.StartTimer()
				if err := Handle(context.Background(), cfg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkHandleGuard is BenchmarkHandle's unchanged run with --min-nodes
// on, which reads the snapshot of the published nodes (OUTPUT.published)
// and compares it with the one it would write: the guard's cost per run.
func BenchmarkHandleGuard(b *testing.B) {
	for _, n := range benchSizes() {
		nodes, output := benchRegistry(b, n)
		line := "node00001\t10.0.0.1\tbackend\tport=3000,role=backend\n"
		for _, min := range []int{0, 2} {
			b.Run(fmt.Sprintf("min-nodes=%d/nodes=%d", min, n), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					cfg := benchConfig(nodes, output, line)
					cfg.MinNodes = min
					if err := Handle(context.Background(), cfg); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkBatch is a start-up event: Serf sends every member it learns
// as one member-join, here n backends into an empty registry, so the run
// registers n nodes (made durable before it returns), renders and
// installs them, and reloads. B/op is what it allocates; scripts/bench.sh
// --batch measures the whole process's wall time and peak RSS, before and
// after, in one run.
func BenchmarkBatch(b *testing.B) {
	for _, n := range benchSizes() {
		var sb strings.Builder
		for i := 1; i <= n; i++ {
			sb.WriteString(benchLine(i))
		}
		in := sb.String()
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				dir := b.TempDir()
				nodes, output := filepath.Join(dir, "nodes"), filepath.Join(dir, "haproxy.cfg")
				if err := os.Mkdir(nodes, 0o755); err != nil {
					b.Fatal(err)
				}
				cfg := benchConfig(nodes, output, in)
				b.StartTimer()
				if err := Handle(context.Background(), cfg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
