// Command bench times whole handler processes: one member-join event (one
// line on stdin, reload command "true", no check) handled by serf-hb and by
// the lab's member-join.sh with handlebars-cmd, against registries of
// several sizes, next to the exec of a trivial static Go binary (the floor).
//
// It is run by scripts/bench.sh, which builds the binaries and finds the
// lab scripts; see docs/performance.md for what it measures and why.
//
// Each size gets its own registries, built once. Before every timed run the
// state is put back untimed (the joined node's file removed, serf-hb's
// output restored to the render of the registry as it was) and the file
// systems are synced, so every run does the same work: register one new
// node, render, install, reload. The tools are run in turn inside each
// repetition, in an order that rotates, so that a busy moment on the
// machine hits them alike and the ratios compare runs made side by side.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

// The event every run handles: a backend joins.
const (
	joinName = "bench-join"
	joinLine = joinName + "\t10.255.255.1\tbackend\tport=3000,role=backend\n"
)

// labLimit is about where the lab's registry stops fitting in one argument
// (E2BIG, contract item 9): above it the lab writes a 0-byte config.
const labLimit = 3300

// runTimeout bounds one run; the lab at 3,000 nodes takes about 8 s.
const runTimeout = 3 * time.Minute

// target is one program under test.
type target interface {
	name() string
	// prepare builds the state for a registry of n nodes, once per size.
	prepare(n int) error
	// reset puts the state back before a run; it is not timed.
	reset() error
	// command returns the process to time, without its stdio.
	command(ctx context.Context) *exec.Cmd
	// verify checks, untimed, that a run did its job.
	verify(n int) error
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

type options struct {
	serfHB, compare, floor, baseline, hbPrefix, work, timeBin string
	sizes, labSizes                                           []int
	reps, labReps, labRepsBig                                 int
	sync, markdown, verbose                                   bool
}

func run() error {
	var o options
	var sizes, labSizes string
	flag.StringVar(&o.serfHB, "serf-hb", "", "serf-hb binary (required)")
	flag.StringVar(&o.floor, "floor", "", "trivial static Go binary (required)")
	flag.StringVar(&o.compare, "compare", "", "another serf-hb binary (say, a build before a change) run alongside, for an A/B in the same run")
	flag.StringVar(&o.baseline, "baseline", "", "directory of the lab scripts; empty: no lab runs")
	flag.StringVar(&o.hbPrefix, "hb-prefix", "", "npm prefix holding handlebars-cmd; empty: no lab runs")
	flag.StringVar(&o.work, "work", "", "scratch directory (default: a new temp dir, removed at the end)")
	flag.StringVar(&o.timeBin, "time", "/usr/bin/time", "GNU time, for peak RSS (-v); empty: skip")
	flag.StringVar(&sizes, "sizes", "0,100,1000,10000", "registry sizes for serf-hb")
	flag.StringVar(&labSizes, "lab-sizes", "0,100,1000", "registry sizes for the lab scripts")
	flag.IntVar(&o.reps, "reps", 21, "timed runs of serf-hb and the floor per size")
	flag.IntVar(&o.labReps, "lab-reps", 9, "timed runs of the lab per size below 1,000 nodes")
	flag.IntVar(&o.labRepsBig, "lab-reps-big", 3, "timed runs of the lab per size from 1,000 nodes")
	flag.BoolVar(&o.sync, "sync", true, "sync(2) before every timed run, so no run pays for the previous one's writeback")
	flag.BoolVar(&o.markdown, "markdown", false, "print the table as Markdown")
	flag.BoolVar(&o.verbose, "v", false, "print every run's time")
	flag.Parse()
	var err error
	if o.sizes, err = parseSizes(sizes); err != nil {
		return fmt.Errorf("-sizes: %v", err)
	}
	if o.labSizes, err = parseSizes(labSizes); err != nil {
		return fmt.Errorf("-lab-sizes: %v", err)
	}
	if o.serfHB == "" || o.floor == "" {
		return errors.New("-serf-hb and -floor are required")
	}
	if o.reps < 1 || o.labReps < 1 || o.labRepsBig < 1 {
		return errors.New("repetitions must be at least 1")
	}
	if o.timeBin != "" {
		if _, err := os.Stat(o.timeBin); err != nil {
			return fmt.Errorf("-time: %v; hint: apt-get install time, or -time '' to skip peak RSS", err)
		}
	}
	if o.work == "" {
		dir, err := os.MkdirTemp("", "serf-hb-bench.")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		o.work = dir
	}
	lab := o.baseline != "" && o.hbPrefix != ""
	if !lab {
		o.labSizes = nil
	}

	// The lab is only run next to serf-hb, for the ratio.
	for _, n := range o.labSizes {
		if !slices.Contains(o.sizes, n) {
			return fmt.Errorf("-lab-sizes: %d is not in -sizes", n)
		}
	}
	var rows []row
	for _, n := range o.sizes {
		r, err := measure(o, n, lab && slices.Contains(o.labSizes, n))
		if err != nil {
			return fmt.Errorf("%d nodes: %v", n, err)
		}
		rows = append(rows, r)
	}
	report(os.Stdout, o, rows, lab)
	return nil
}

func parseSizes(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%q is not a registry size", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// sample is one target's runs at one size.
type sample struct {
	times []time.Duration // wall time, start to exit
	cpu   []time.Duration // user+system time of the process and its children
	rss   int64           // KiB, peak RSS reported by /usr/bin/time -v; 0: not measured
	err   error           // the lab failing at this size, for the report
}

type row struct {
	n                                    int
	serfHB, floor, startup, lab, compare *sample
}

// measure runs every target at one registry size.
func measure(o options, n int, withLab bool) (row, error) {
	dir := filepath.Join(o.work, strconv.Itoa(n))
	hb := &serfHB{bin: o.serfHB, dir: filepath.Join(dir, "serf-hb")}
	fl := &floor{bin: o.floor}
	st := &floor{bin: o.serfHB, args: []string{"--version"}}
	targets := []target{fl, hb, st}
	var cmp *serfHB
	if o.compare != "" {
		cmp = &serfHB{bin: o.compare, prep: o.serfHB, dir: filepath.Join(dir, "compare"), label: "compare"}
		targets = append(targets, cmp)
	}
	var lb *labScript
	if withLab {
		lb = &labScript{baseline: o.baseline, prefix: o.hbPrefix, dir: filepath.Join(dir, "lab")}
		targets = append(targets, lb)
	}
	fmt.Fprintf(os.Stderr, "bench: %d nodes: preparing\n", n)
	for _, t := range targets {
		if err := t.prepare(n); err != nil {
			return row{}, fmt.Errorf("prepare %s: %v", t.name(), err)
		}
	}
	samples := map[target]*sample{}
	for _, t := range targets {
		samples[t] = &sample{}
	}
	syscall.Sync()
	// One untimed run each: it fills the page cache and proves the setup.
	for _, t := range targets {
		if _, _, err := once(o, t, n); err != nil {
			if t == target(lb) {
				samples[t].err = err
				continue
			}
			return row{}, fmt.Errorf("warm-up: %v", err)
		}
	}
	labReps := o.labReps
	if n >= 1000 {
		labReps = o.labRepsBig
	}
	for rep := 0; rep < o.reps; rep++ {
		// Rotate the order so that no target always runs first.
		order := append(targets[rep%len(targets):], targets[:rep%len(targets)]...)
		order = slices.Clone(order)
		for _, t := range order {
			s := samples[t]
			if t == target(lb) && (rep >= labReps || s.err != nil) {
				continue
			}
			d, cpu, err := once(o, t, n)
			if err != nil {
				if t == target(lb) {
					s.err = err
					continue
				}
				return row{}, err
			}
			s.times = append(s.times, d)
			s.cpu = append(s.cpu, cpu)
			if o.verbose {
				fmt.Fprintf(os.Stderr, "bench: %d nodes: %s run %d: %v, cpu %v\n", n, t.name(), rep+1, d, cpu)
			}
		}
	}
	if o.timeBin != "" {
		for _, t := range targets {
			if samples[t].err != nil {
				continue
			}
			// Twice, keeping the higher: one run can be lucky with GC timing.
			for range 2 {
				kib, err := timeV(o, t)
				if err != nil {
					return row{}, fmt.Errorf("%s under %s: %v", t.name(), o.timeBin, err)
				}
				samples[t].rss = max(samples[t].rss, kib)
			}
		}
	}
	r := row{n: n, serfHB: samples[hb], floor: samples[fl], startup: samples[st]}
	if lb != nil {
		r.lab = samples[lb]
	}
	if cmp != nil {
		r.compare = samples[cmp]
	}
	fmt.Fprintf(os.Stderr, "bench: %d nodes: serf-hb %s, floor %s", n, fmtStats(r.serfHB), fmtStats(r.floor))
	if r.lab != nil {
		fmt.Fprintf(os.Stderr, ", lab %s", fmtStats(r.lab))
	}
	fmt.Fprintln(os.Stderr)
	return r, nil
}

// once resets t, runs it on the join line and checks the result. It returns
// the wall time from start to exit and the CPU time (user+system) of the
// process and its waited-for descendants: a busy machine stretches the
// first much more than the second. (Peak RSS is left to /usr/bin/time: the
// rusage of a child forked from this process starts from this process's
// own high-water mark.)
func once(o options, t target, n int) (time.Duration, time.Duration, error) {
	if err := t.reset(); err != nil {
		return 0, 0, fmt.Errorf("reset %s: %v", t.name(), err)
	}
	if o.sync {
		syscall.Sync()
	}
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd := t.command(ctx)
	var out bytes.Buffer
	// Pipes on every side, as Serf gives a handler.
	cmd.Stdin = strings.NewReader(joinLine)
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if err != nil {
		return 0, 0, fmt.Errorf("%s: %v: %s", t.name(), err, tail(out.Bytes()))
	}
	cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	if err := t.verify(n); err != nil {
		return 0, 0, fmt.Errorf("%s: exit 0 after %s ms, but %v; its output: %s", t.name(), ms(d), err, tail(out.Bytes()))
	}
	return d, cpu, nil
}

// timeV runs t once under GNU time -v and returns the peak RSS it reports.
func timeV(o options, t target) (int64, error) {
	if err := t.reset(); err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd := t.command(ctx)
	report := filepath.Join(o.work, "time-v.txt")
	cmd.Args = append([]string{o.timeBin, "-v", "-o", report}, cmd.Args...)
	cmd.Path = o.timeBin
	cmd.Stdin = strings.NewReader(joinLine)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("%v: %s", err, tail(out.Bytes()))
	}
	data, err := os.ReadFile(report)
	if err != nil {
		return 0, err
	}
	const key = "Maximum resident set size (kbytes):"
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), key); ok {
			return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("no %q line in %s", key, report)
}

func tail(b []byte) string {
	const max = 600
	b = bytes.TrimSpace(b)
	if len(b) > max {
		b = append([]byte("..."), b[len(b)-max:]...)
	}
	return string(b)
}

// nodeName and nodeAddr give registered node i (0-based) its identity.
func nodeName(i int) string { return fmt.Sprintf("node%05d", i) }

func nodeAddr(i int) string {
	i++ // no .0 host
	return fmt.Sprintf("10.%d.%d.%d", i>>16&0xff, i>>8&0xff, i&0xff)
}

// writeRegistry creates dir/nodes holding n node files made by body.
func writeRegistry(dir string, n int, body func(i int) string) (string, error) {
	nodes := filepath.Join(dir, "nodes")
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	if err := os.MkdirAll(nodes, 0o755); err != nil {
		return "", err
	}
	for i := 0; i < n; i++ {
		if err := os.WriteFile(filepath.Join(nodes, nodeName(i)), []byte(body(i)), 0o644); err != nil {
			return "", err
		}
	}
	return nodes, nil
}

// countServers counts the "server " lines of a rendered config and checks
// that the joined node is among them.
func countServers(path string, want int) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	got, joined := 0, false
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == "server" {
			got++
			joined = joined || f[1] == joinName
		}
	}
	if got != want || !joined {
		return fmt.Errorf("%s has %d server lines (joined node present: %v), want %d", path, got, joined, want)
	}
	return nil
}

// serfHB is serf-hb with its default template, a registry written in its
// own file format, no check and reload "true".
type serfHB struct {
	bin, dir, nodes, output string
	prep                    string // binary that renders the starting output; "": bin
	label                   string // "" for the serf-hb under test
	base                    []byte // the output for the registry before the join
}

func (s *serfHB) name() string {
	if s.label != "" {
		return "serf-hb (" + s.label + ")"
	}
	return "serf-hb"
}

func (s *serfHB) env() []string {
	return []string{
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"SERF_EVENT=member-join", "SERF_SELF_NAME=lb", "SERF_SELF_ROLE=balancer", "SERF_TAG_ROLE=balancer",
		"SERF_HB_NODES_DIR=" + s.nodes, "SERF_HB_OUTPUT=" + s.output,
		"SERF_HB_RELOAD=true", "SERF_HB_CHECK=",
	}
}

func (s *serfHB) prepare(n int) error {
	nodes, err := writeRegistry(s.dir, n, func(i int) string {
		// nodestore's format: the lab's "NAME ADDR" line, then role and
		// tags as JSON (what serf-hb itself writes for a joined member).
		return nodeName(i) + " " + nodeAddr(i) + "\n" + `{"role":"backend","tags":{"port":"3000","role":"backend"}}` + "\n"
	})
	if err != nil {
		return err
	}
	s.nodes, s.output = nodes, filepath.Join(s.dir, "haproxy.cfg")
	// The registry's own render, made by serf-hb: the steady state a join
	// arrives in. A registry in service is mostly files written long ago,
	// which serf-hb's index caches once they are a second old (nodestore's
	// racyMargin): wait that out, so that the render writes the index.
	time.Sleep(1100 * time.Millisecond)
	prep := s.bin
	if s.prep != "" {
		prep = s.prep
	}
	cmd := exec.Command(prep, "render")
	cmd.Env = append(s.env(), "SERF_HB_RELOAD=")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("serf-hb render: %v: %s", err, tail(out))
	}
	s.base, err = os.ReadFile(s.output)
	return err
}

func (s *serfHB) reset() error {
	if err := os.Remove(filepath.Join(s.nodes, joinName)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return os.WriteFile(s.output, s.base, 0o644)
}

func (s *serfHB) command(ctx context.Context) *exec.Cmd {
	cmd := exec.CommandContext(ctx, s.bin)
	cmd.Env = s.env()
	return cmd
}

func (s *serfHB) verify(n int) error { return countServers(s.output, n+1) }

// labScript is the lab's member-join.sh with handlebars-cmd and its
// template, on a registry in the lab's format.
type labScript struct {
	baseline, prefix, dir, nodes, output string
}

func (l *labScript) name() string { return "lab" }

func (l *labScript) prepare(n int) error {
	nodes, err := writeRegistry(l.dir, n, func(i int) string { return nodeName(i) + " " + nodeAddr(i) + "\n" })
	if err != nil {
		return err
	}
	l.nodes, l.output = nodes, filepath.Join(l.dir, "haproxy.cfg")
	return nil
}

func (l *labScript) reset() error {
	err := os.Remove(filepath.Join(l.nodes, joinName))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

func (l *labScript) command(ctx context.Context) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(l.baseline, "member-join.sh"))
	cmd.Env = []string{
		"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + l.dir,
		"SERF_EVENT=member-join", "SERF_SELF_NAME=lb", "SERF_SELF_ROLE=balancer", "SERF_TAG_ROLE=balancer",
		"HB_PREFIX=" + l.prefix, "NODES_DIR=" + l.nodes, "TEMPLATE=" + filepath.Join(l.baseline, "haproxy.cfg.hb"),
		"OUTPUT=" + l.output, "LOG=" + filepath.Join(l.dir, "serf.log"), "RELOAD_CMD=true",
	}
	return cmd
}

// verify matters for the lab: it exits 0 (its last command is the reload)
// even when handlebars never ran and the config is empty.
func (l *labScript) verify(n int) error { return countServers(l.output, n+1) }

// floor is a static Go binary that does nothing; with args, it is another
// binary that handles no event (serf-hb --version: its start-up alone).
type floor struct {
	bin  string
	args []string
}

func (f *floor) name() string {
	if len(f.args) > 0 {
		return filepath.Base(f.bin) + " " + strings.Join(f.args, " ")
	}
	return "floor"
}

func (f *floor) prepare(int) error { return nil }
func (f *floor) reset() error      { return nil }
func (f *floor) verify(int) error  { return nil }
func (f *floor) command(ctx context.Context) *exec.Cmd {
	cmd := exec.CommandContext(ctx, f.bin, f.args...)
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin"}
	return cmd
}

func median(ts []time.Duration) time.Duration {
	s := slices.Clone(ts)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func ms(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	switch {
	case v < 10:
		return strconv.FormatFloat(v, 'f', 2, 64)
	case v < 1000:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

func fmtStats(s *sample) string {
	if s == nil || len(s.times) == 0 {
		if s != nil && s.err != nil {
			return "failed"
		}
		return "-"
	}
	return fmt.Sprintf("%s ms (%s-%s, n=%d)", ms(median(s.times)), ms(slices.Min(s.times)), ms(slices.Max(s.times)), len(s.times))
}

func mib(kib int64) string {
	if kib == 0 {
		return "-"
	}
	return strconv.FormatFloat(float64(kib)/1024, 'f', 1, 64) + " MiB"
}

// report prints the table and the derived figures.
func report(w io.Writer, o options, rows []row, lab bool) {
	head := []string{"nodes", "serf-hb wall", "min-max", "cpu", "lab wall", "min-max", "cpu",
		"lab/serf-hb wall", "cpu", "serf-hb RSS", "lab RSS", "floor wall", "serf-hb/floor", "runs"}
	var lines [][]string
	for _, r := range rows {
		hb, fl := r.serfHB, r.floor
		line := []string{strconv.Itoa(r.n), ms(median(hb.times)) + " ms", spread(hb.times), ms(median(hb.cpu)) + " ms"}
		runs := strconv.Itoa(len(hb.times))
		switch {
		case r.lab != nil && len(r.lab.times) > 0:
			line = append(line, ms(median(r.lab.times))+" ms", spread(r.lab.times), ms(median(r.lab.cpu))+" ms",
				ratio(median(r.lab.times), median(hb.times)), ratio(median(r.lab.cpu), median(hb.cpu)))
			runs += "/" + strconv.Itoa(len(r.lab.times))
		case r.lab != nil && r.lab.err != nil:
			line = append(line, "failed", "-", "-", "-", "-")
		case !lab:
			line = append(line, "skipped", "-", "-", "-", "-")
		case r.n > labLimit:
			line = append(line, "not run (E2BIG)", "-", "-", "-", "-")
		default:
			line = append(line, "not run", "-", "-", "-", "-")
		}
		labRSS := "-"
		if r.lab != nil {
			labRSS = mib(r.lab.rss)
		}
		line = append(line, mib(hb.rss), labRSS, ms(median(fl.times))+" ms", ratio(median(hb.times), median(fl.times)), runs)
		lines = append(lines, line)
	}
	if o.markdown {
		fmt.Fprintln(w, "| "+strings.Join(head, " | ")+" |")
		fmt.Fprintln(w, "|"+strings.Repeat("---:|", len(head)))
		for _, l := range lines {
			fmt.Fprintln(w, "| "+strings.Join(l, " | ")+" |")
		}
	} else {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
		for _, l := range lines {
			fmt.Fprintln(tw, strings.Join(l, "\t")+"\t")
		}
		tw.Flush()
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "wall: median of the timed runs, start to exit; cpu: median user+system time of the process and its children;")
	fmt.Fprintln(w, "RSS: peak resident set of the process tree (/usr/bin/time -v, higher of 2 runs); runs: serf-hb (and floor) / lab.")
	if len(rows) > 0 {
		r := rows[0]
		fmt.Fprintf(w, "floor (static Go binary that exits), at %d nodes: %s wall, %s ms cpu, peak RSS %s\n",
			r.n, fmtStats(r.floor), ms(median(r.floor.cpu)), mib(r.floor.rss))
		fmt.Fprintf(w, "serf-hb --version (start-up, no event), at %d nodes: %s wall (%s the floor), %s ms cpu, peak RSS %s\n",
			r.n, fmtStats(r.startup), ratio(median(r.startup.times), median(r.floor.times)), ms(median(r.startup.cpu)), mib(r.startup.rss))
	}
	for _, r := range rows {
		if c := r.compare; c != nil {
			fmt.Fprintf(w, "compare at %d nodes: %s: %s wall, %s ms cpu, RSS %s; compare/serf-hb: %s wall, %s cpu\n",
				r.n, o.compare, fmtStats(c), ms(median(c.cpu)), mib(c.rss),
				ratio(median(c.times), median(r.serfHB.times)), ratio(median(c.cpu), median(r.serfHB.cpu)))
		}
	}
	for _, r := range rows {
		if r.lab != nil && r.lab.err != nil {
			fmt.Fprintf(w, "lab at %d nodes failed: %v\n", r.n, r.lab.err)
		}
	}
	// Growth: the cost of each registered node between the smallest and
	// the largest registry.
	if len(rows) >= 2 {
		a, b := rows[0], rows[len(rows)-1]
		if b.n > a.n {
			per := func(x, y time.Duration) float64 {
				return float64(y-x) / float64(b.n-a.n) / float64(time.Microsecond)
			}
			fmt.Fprintf(w, "serf-hb cost per registered node (%d -> %d nodes, medians): %.2f us wall, %.2f us cpu\n",
				a.n, b.n, per(median(a.serfHB.times), median(b.serfHB.times)), per(median(a.serfHB.cpu), median(b.serfHB.cpu)))
		}
	}
	if lab {
		for _, n := range o.sizes {
			if !slices.Contains(o.labSizes, n) && n > labLimit {
				fmt.Fprintf(w, "lab at %d nodes: not run: above ~%d nodes its node list no longer fits in one argument (E2BIG) and it writes a 0-byte config; it takes ~8 s per event at 3,000 already\n", n, labLimit)
			}
		}
	}
}

func spread(ts []time.Duration) string {
	return ms(slices.Min(ts)) + "-" + ms(slices.Max(ts))
}

func ratio(a, b time.Duration) string {
	if b <= 0 {
		return "-"
	}
	r := float64(a) / float64(b)
	if r >= 10 {
		return strconv.FormatFloat(r, 'f', 0, 64) + "x"
	}
	return strconv.FormatFloat(r, 'f', 1, 64) + "x"
}
