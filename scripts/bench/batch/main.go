// Command batch times a start-up event, for scripts/bench.sh --batch: Serf
// sends every member it learns as one member-join, so serf-hb registers
// them all (durably), renders and installs the output and reloads, in one
// run. Each repetition gives every binary a new empty registry and the
// same stdin, in an order that rotates, and runs it under GNU time for its
// peak RSS. Next to them, the floor: the least any handler keeping one
// atomically replaced, durable file per node does on this machine (create
// and write N temp files, one syncfs, N renames, one directory fsync),
// timed in this process.
//
// Two shapes of member lines: "small" (three tags, ~65 bytes a line) and
// "full" (tags filling Serf's 512-byte limit, ~540 bytes a line).
package main

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "batch: %v\n", err)
		os.Exit(1)
	}
}

type target struct {
	label, bin string
	wall       []time.Duration
	rss        []int64 // KiB
}

func run() error {
	var (
		bins              []*target
		serfHB, compare   string
		work, timeBin     string
		shapes            string
		members, reps     int
		floorOnly, noSync bool
	)
	flag.StringVar(&serfHB, "serf-hb", "", "serf-hb binary (required)")
	flag.StringVar(&compare, "compare", "", "another serf-hb binary (a build before a change), run alongside")
	flag.StringVar(&work, "work", "", "scratch directory (required); its file system is what is measured")
	flag.StringVar(&timeBin, "time", "/usr/bin/time", "GNU time, for peak RSS")
	flag.StringVar(&shapes, "shapes", "small,full", "member line shapes: small, full")
	flag.IntVar(&members, "members", 10000, "members in the event")
	flag.IntVar(&reps, "reps", 5, "timed runs of each binary per shape")
	flag.BoolVar(&floorOnly, "floor-only", false, "time the floor only")
	flag.BoolVar(&noSync, "no-sync", false, "skip the sync(2) before each run")
	flag.Parse()
	if serfHB == "" && !floorOnly || work == "" {
		return errors.New("-serf-hb and -work are required")
	}
	if _, err := os.Stat(timeBin); err != nil {
		return fmt.Errorf("-time: %v; hint: apt-get install time", err)
	}
	if !floorOnly {
		bins = append(bins, &target{label: "serf-hb", bin: serfHB})
		if compare != "" {
			bins = append(bins, &target{label: "compare", bin: compare})
		}
	}
	fmt.Printf("batch: %d members, %d runs each, scratch %s\n", members, reps, work)
	fmt.Printf("| shape | stdin | target | wall median | min-max | peak RSS (max) | vs compare |\n|---|---:|---|---:|---:|---:|---:|\n")
	for _, shape := range strings.Split(shapes, ",") {
		in, err := input(shape, members)
		if err != nil {
			return err
		}
		stdin := filepath.Join(work, "stdin-"+shape)
		if err := os.WriteFile(stdin, in, 0o644); err != nil {
			return err
		}
		for _, t := range bins {
			t.wall, t.rss = nil, nil
		}
		fl := &target{label: "floor"}
		for rep := range reps {
			order := append(slices.Clone(bins[rep%max(len(bins), 1):]), bins[:rep%max(len(bins), 1)]...)
			for _, t := range order {
				if !noSync {
					syscall.Sync()
				}
				d, kib, err := once(t, work, stdin, timeBin, members)
				if err != nil {
					return fmt.Errorf("%s, %s: %v", shape, t.label, err)
				}
				t.wall, t.rss = append(t.wall, d), append(t.rss, kib)
			}
			if !noSync {
				syscall.Sync()
			}
			d, err := floor(work, members)
			if err != nil {
				return fmt.Errorf("floor: %v", err)
			}
			fl.wall = append(fl.wall, d)
		}
		var base *target
		for _, t := range bins {
			if t.label == "compare" {
				base = t
			}
		}
		for _, t := range append(slices.Clone(bins), fl) {
			rss, vs := "-", ""
			if len(t.rss) > 0 {
				rss = fmt.Sprintf("%.1f MiB", float64(slices.Max(t.rss))/1024)
			}
			if base != nil && t != base {
				vs = fmt.Sprintf("%.2fx", float64(median(base.wall))/float64(median(t.wall)))
			}
			fmt.Printf("| %s | %.1f MB | %s | %s | %s-%s | %s | %s |\n", shape, float64(len(in))/1e6, t.label,
				ms(median(t.wall)), ms(slices.Min(t.wall)), ms(slices.Max(t.wall)), rss, vs)
		}
	}
	return nil
}

// input is the stdin of a start-up event of n members.
func input(shape string, n int) ([]byte, error) {
	var tags string
	switch shape {
	case "small":
		tags = "role=backend,port=3000,dc=eu-west-1"
	case "full":
		// Serf refuses tags over 512 bytes (msgpack-encoded): 14 tags of
		// 30-byte values and the two serf-hb reads come close.
		var b strings.Builder
		b.WriteString("role=backend,port=3000")
		for j := range 14 {
			fmt.Fprintf(&b, ",k%02d=%s", j, strings.Repeat("v", 30))
		}
		tags = b.String()
	default:
		return nil, fmt.Errorf("unknown shape %q (small, full)", shape)
	}
	var b bytes.Buffer
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "node%05d\t10.%d.%d.%d\tbackend\t%s\n", i, byte(i>>16), byte(i>>8), byte(i), tags)
	}
	return b.Bytes(), nil
}

// once runs t on stdin over a new empty registry, under GNU time.
func once(t *target, work, stdin, timeBin string, members int) (time.Duration, int64, error) {
	dir := filepath.Join(work, "run")
	if err := os.RemoveAll(dir); err != nil {
		return 0, 0, err
	}
	nodes, output := filepath.Join(dir, "nodes"), filepath.Join(dir, "haproxy.cfg")
	if err := os.MkdirAll(nodes, 0o755); err != nil {
		return 0, 0, err
	}
	in, err := os.Open(stdin)
	if err != nil {
		return 0, 0, err
	}
	defer in.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	report := filepath.Join(work, "time.txt")
	cmd := exec.CommandContext(ctx, timeBin, "-f", "%M", "-o", report, t.bin)
	cmd.Env = []string{
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"SERF_EVENT=member-join", "SERF_SELF_NAME=lb", "SERF_SELF_ROLE=balancer", "SERF_TAG_ROLE=balancer",
		"SERF_HB_NODES_DIR=" + nodes, "SERF_HB_OUTPUT=" + output, "SERF_HB_RELOAD=true", "SERF_HB_CHECK=",
	}
	var out bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = in, &out, &out
	start := time.Now()
	err = cmd.Run()
	d := time.Since(start)
	if err != nil {
		return 0, 0, fmt.Errorf("%v: %.600s", err, out.String())
	}
	rep, err := os.ReadFile(report)
	if err != nil {
		return 0, 0, err
	}
	kib, err := strconv.ParseInt(strings.TrimSpace(string(rep)), 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("%s: %v", report, err)
	}
	ents, err := os.ReadDir(nodes)
	if err != nil {
		return 0, 0, err
	}
	got := 0
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), ".") { // .lock, .index
			got++
		}
	}
	if got != members {
		return 0, 0, fmt.Errorf("exit 0 after %v but %d entries in the registry, want %d nodes", d, got, members)
	}
	return d, kib, nil
}

// floor writes n node files the least way that keeps them atomic and
// durable: temp files written, one syncfs, renames, a directory fsync;
// no reading, no parsing, no render.
func floor(work string, n int) (time.Duration, error) {
	dir := filepath.Join(work, "floor")
	if err := os.RemoveAll(dir); err != nil {
		return 0, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	start := time.Now()
	d, err := os.Open(dir)
	if err != nil {
		return 0, err
	}
	defer d.Close()
	data := []byte("node00001 10.0.0.1\n{\"role\":\"backend\",\"tags\":{\"port\":\"3000\",\"role\":\"backend\"}}\n")
	if err := sixteen(n, func(i int) error {
		return os.WriteFile(filepath.Join(dir, ".n"+strconv.Itoa(i)), data, 0o644)
	}); err != nil {
		return 0, err
	}
	if err := unix.Syncfs(int(d.Fd())); err != nil {
		return 0, err
	}
	if err := sixteen(n, func(i int) error {
		return os.Rename(filepath.Join(dir, ".n"+strconv.Itoa(i)), filepath.Join(dir, "n"+strconv.Itoa(i)))
	}); err != nil {
		return 0, err
	}
	if err := d.Sync(); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// sixteen calls f(0..n-1), sixteen at a time (as serf-hb does: on a busy
// file system each create or rename can wait for the journal, and
// several at once share the wait), and returns the first error.
func sixteen(n int, f func(i int) error) error {
	var (
		next  atomic.Int64
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for range 16 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					mu.Lock()
					first = cmp.Or(first, err)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return first
}

func median(ts []time.Duration) time.Duration {
	s := slices.Clone(ts)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }
