package live

// Figures, not tests (docs/performance.md, "Live updates"; run them with
// scripts/livebench.sh). Every benchmark reports its own metrics, medians
// over its iterations: run them with -benchtime Nx, as each iteration is a
// whole serf-hb process against a real HAProxy. 10,000 registered nodes
// only with SERF_HB_LIVE_BIG=1.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/serf-hb/serf-hb/scripts/internal/harness"
)

// benchSizes are the registered nodes the benchmarks run at.
func benchSizes() []int {
	if os.Getenv("SERF_HB_LIVE_BIG") != "" {
		return []int{100, 1000, 10000}
	}
	return []int{100, 1000}
}

// benchLab starts a lab with web0 (a live backend) and n registered nodes
// that are down, and waits until HAProxy's checks have marked them DOWN.
// Servers that are DOWN are checked every 10 s (downinter), not every
// 300 ms: 10,000 of them would otherwise cost HAProxy 33,000 checks a
// second, and the figures would measure that.
func benchLab(b *testing.B, n int, o tmplOpts) (*lab, *backend) {
	b.Helper()
	o.server += " downinter 10s"
	web0 := startBackend(b, "web0")
	ms := []member{web0.member()}
	for i := 0; i < n; i++ {
		ms = append(ms, downMember(i))
	}
	l := newLab(b, o, ms...)
	l.waitFor("the down nodes to be DOWN", 90*time.Second, func() error {
		up := 0
		for name, s := range l.mustServers() {
			if strings.HasPrefix(name, "down") && s.up() {
				up++
			}
		}
		if up > 0 {
			return errorf("%d down nodes still UP", up)
		}
		return nil
	})
	return l, web0
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// joinPaths are the ways a join reaches HAProxy.
var joinPaths = []struct {
	name  string
	opts  tmplOpts
	flags []string
}{
	// The runtime API: the server added live, then the file checked.
	{"live", tmplOpts{}, nil},
	// serf-hb before --haproxy-socket: check, install, reload; the new
	// worker starts every server UP, the down ones too.
	{"reload", tmplOpts{}, []string{"--haproxy-socket", ""}},
	// A template with a line that changes with the membership: a reload,
	// with the server states dumped before it.
	{"reload+state", tmplOpts{backend: "    description {{ nodes|length }} servers\n"}, nil},
}

// BenchmarkJoin: from serf-hb's start to the first answer of a newly
// joined backend through HAProxy, with --check 'haproxy -c -f {}', while
// a client sends 1,000 requests a second through the frontend (open loop,
// a new connection each). Metrics: ms-first (start to first answer),
// ms-run (serf-hb's whole process), failed-first (failed requests sent
// from the start to the first answer), failed-2s (sent in the 2 s from
// the start).
func BenchmarkJoin(b *testing.B) {
	for _, n := range benchSizes() {
		for _, p := range joinPaths {
			b.Run(fmt.Sprintf("%s/nodes=%d", p.name, n), func(b *testing.B) {
				l, _ := benchLab(b, n, p.opts)
				var first, run, failedFirst, failed2s []float64
				i := 0
				for b.Loop() {
					i++
					nb := startBackend(b, fmt.Sprintf("new%d", i))
					ld := l.startRate(1000)
					time.Sleep(100 * time.Millisecond)
					cmd := l.hbCmd("member-join", []member{nb.member()}, p.flags...)
					t0, at, wall := l.timedJoin(cmd, ld, nb)
					time.Sleep(time.Until(t0.Add(2 * time.Second)))
					ld.stop()
					first, run = append(first, ms(at.Sub(t0))), append(run, ms(wall))
					failedFirst = append(failedFirst, float64(ld.failedBetween(t0, at)))
					failed2s = append(failed2s, float64(ld.failedBetween(t0, t0.Add(2*time.Second))))
					// Back to n+1 nodes, and to every down node DOWN.
					if r := l.hb("member-leave", []member{nb.member()}, p.flags...); r.code != 0 {
						b.Fatalf("leave: %s", r)
					}
					nb.stop()
					if p.name != "live" {
						time.Sleep(1500 * time.Millisecond)
					}
				}
				b.ReportMetric(median(first), "ms-first")
				b.ReportMetric(median(run), "ms-run")
				b.ReportMetric(median(failedFirst), "failed-first")
				b.ReportMetric(median(failed2s), "failed-2s")
			})
		}
	}
}

// BenchmarkFloor: what the live path cannot do without. serf-hb's own run
// with no HAProxy work (no check, no socket, no reload) on a registry of
// the same size, alone (ms-run-alone) and while a client sends 1,000
// requests a second through HAProxy, as during BenchmarkEvents' join
// (ms-run-alone-loaded); round trips of the runtime API: show servers state of
// the backend (what Verify reads) and set weight (a command); their sum
// for a join, the medians of alone-loaded, two commands (the add, then
// its checks and rotation on one connection) and one show servers state
// (ms-join-floor); and the first answer's floors
// (firstFloor): after a process that does nothing (ms-first-floor) and
// after serf-hb's own start-up (ms-first-floor-start). BenchmarkEvents
// measures the join's, the first answer's and a change's floor beside
// each iteration's events.
func BenchmarkFloor(b *testing.B) {
	for _, n := range benchSizes() {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			l, web0 := benchLab(b, n, tmplOpts{})
			alone := aloneFlags(b, l, web0, n)
			var run, cpu, loaded, state, cmd, first, firstStart []float64
			i := 0
			for b.Loop() {
				// A join and a leave, one of them while the load
				// BenchmarkEvents' join meets runs, by turns.
				for k, event := range []string{"member-join", "member-leave"} {
					loadedRun := (k == 0) == (i%2 == 1)
					r := l.aloneRun(alone, event, loadedRun)
					if loadedRun {
						loaded = append(loaded, ms(r.wall))
						continue
					}
					run, cpu = append(run, ms(r.wall)), append(cpu, ms(r.cpu))
				}
				i++
				st, c := l.roundTrips()
				state, cmd = append(state, st), append(cmd, c)
				first = append(first, firstFloor(b, l, fmt.Sprintf("ff%d", i), exec.Command("true")))
				firstStart = append(firstStart, l.firstFloorStart(b, fmt.Sprintf("fs%d", i)))
			}
			b.ReportMetric(median(first), "ms-first-floor")
			b.ReportMetric(median(firstStart), "ms-first-floor-start")
			b.ReportMetric(median(run), "ms-run-alone")
			b.ReportMetric(median(loaded), "ms-run-alone-loaded")
			b.ReportMetric(median(cpu), "ms-cpu-alone")
			b.ReportMetric(median(state), "ms-show-state")
			b.ReportMetric(median(cmd), "ms-command")
			b.ReportMetric(median(loaded)+2*median(cmd)+median(state), "ms-join-floor")
		})
	}
}

// aloneFlags gives l a second registry and output, of web0 and n down
// nodes as benchLab made, that HAProxy is never told about, and returns
// the flags that run serf-hb on them with no HAProxy work: no check, no
// runtime API, no reload.
func aloneFlags(b *testing.B, l *lab, web0 *backend, n int) []string {
	alone := []string{"--nodes-dir", filepath.Join(l.dir, "nodes2"), "--output", filepath.Join(l.dir, "alone.cfg"),
		"--check", "", "--reload", "", "--haproxy-socket", "", "--haproxy-master-socket", ""}
	l.must(os.MkdirAll(filepath.Join(l.dir, "nodes2"), 0o755))
	ms0 := []member{web0.member()}
	for i := 0; i < n; i++ {
		ms0 = append(ms0, downMember(i))
	}
	if r := l.hb("member-join", ms0, alone...); r.code != 0 {
		b.Fatalf("%s", r)
	}
	time.Sleep(1100 * time.Millisecond) // the registry's index takes files older than 1 s
	return alone
}

// aloneMember is the node aloneRun joins and leaves.
var aloneMember = member{name: "extra", addr: netPrefix + "249", port: downPort}

// aloneRun is serf-hb's run of event for aloneMember on the registry
// alone (aloneFlags) names, while the 1,000 requests a second of
// BenchmarkEvents' join run when loaded.
func (l *lab) aloneRun(alone []string, event string, loaded bool) cpuRun {
	l.t.Helper()
	var ld *load
	if loaded {
		ld = l.startRate(1000)
		time.Sleep(100 * time.Millisecond)
	}
	r := l.hbWith(harness.Bin("serf-hb"), event, []member{aloneMember}, alone...)
	if ld != nil {
		ld.stop()
	}
	return r
}

// roundTrips times two round trips of the runtime API: show servers state
// of the backend (what Verify reads) and one command (set weight).
func (l *lab) roundTrips() (state, cmd float64) {
	l.t.Helper()
	c, ctx := l.runtime(), context.Background()
	t0 := time.Now()
	if _, err := c.Command(ctx, "show servers state nodes"); err != nil {
		l.t.Fatal(err)
	}
	state = ms(time.Since(t0))
	t0 = time.Now()
	if _, err := c.Command(ctx, "set weight nodes/web0 1"); err != nil {
		l.t.Fatal(err)
	}
	return state, ms(time.Since(t0))
}

// firstFloorStart is firstFloor after serf-hb's own start-up: the Go
// runtime, and kong building its model and parsing the join's command
// line up to --version, where it exits.
func (l *lab) firstFloorStart(b *testing.B, name string) float64 {
	return firstFloor(b, l, name, l.hbCmd("member-join", nil, "--version"))
}

// firstFloor is the least time from a handler's start to a new backend's
// first answer through HAProxy, measured as BenchmarkEvents measures
// ms-first-join (1,000 requests a second running): proc is run (true(1),
// or serf-hb exiting once started), then the commands that add the
// server as serf-hb sends them (add server as the lab's template writes
// the line; then enable health and state ready on one connection) go to
// the runtime API. No lock, registry, template or verification. The
// backend, named name, is taken out again, untimed.
func firstFloor(b *testing.B, l *lab, name string, proc *exec.Cmd) float64 {
	nb := startBackend(b, name)
	defer nb.stop()
	ld := l.startRate(1000)
	defer ld.stop()
	time.Sleep(100 * time.Millisecond)
	c, ctx := l.runtime(), context.Background()
	bs := "nodes/" + nb.name
	t0 := time.Now()
	if out, err := proc.Output(); err != nil {
		b.Fatalf("%s: %v: %s", proc, err, out)
	}
	if _, err := c.Command(ctx, fmt.Sprintf("add server %s %s:%d check inter 300ms downinter 10s", bs, nb.ip, nb.port)); err != nil {
		b.Fatal(err)
	}
	if err := c.Commands(ctx, "enable health "+bs, "set server "+bs+" state ready"); err != nil {
		b.Fatal(err)
	}
	l.waitFor("the floor's backend's first answer", time.Minute, func() error {
		if at, _ := ld.answered(nb.name); at.IsZero() {
			return errorf("no answer from %s yet", nb.name)
		}
		return nil
	})
	at, _ := ld.answered(nb.name)
	ld.stop()
	c.Command(ctx, "set server "+bs+" state maint")
	c.Command(ctx, "shutdown sessions server "+bs)
	c.Command(ctx, "del server "+bs)
	return ms(at.Sub(t0))
}

// BenchmarkRemove: a leave and a failure (the server retired) of a
// backend, live, while a client sends 1,000 requests a second through the
// frontend (open loop). Metrics: ms-run (serf-hb's process), ms-last
// (start to the last answer the removed backend gave), failed-1s (failed
// requests sent in the second from the start).
func BenchmarkRemove(b *testing.B) {
	for _, n := range benchSizes() {
		for _, event := range []string{"member-leave", "member-failed"} {
			b.Run(fmt.Sprintf("%s/nodes=%d", strings.TrimPrefix(event, "member-"), n), func(b *testing.B) {
				l, _ := benchLab(b, n, tmplOpts{})
				var run, last, failed []float64
				i := 0
				for b.Loop() {
					i++
					gone := startBackend(b, fmt.Sprintf("gone%d", i))
					if r := l.hb("member-join", []member{gone.member()}); r.result() != "applied" {
						b.Fatalf("join: %s", r)
					}
					ld := l.startRate(1000)
					time.Sleep(100 * time.Millisecond)
					t0 := time.Now()
					r := l.hb(event, []member{gone.member()})
					if r.result() != "applied" {
						b.Fatalf("%s: %s", event, r)
					}
					time.Sleep(time.Until(t0.Add(time.Second)))
					ld.stop()
					_, lastAt := ld.answered(gone.name)
					run, last = append(run, ms(r.wall)), append(last, ms(lastAt.Sub(t0)))
					failed = append(failed, float64(ld.failedBetween(t0, t0.Add(time.Second))))
					gone.stop()
				}
				b.ReportMetric(median(run), "ms-run")
				b.ReportMetric(median(last), "ms-last")
				b.ReportMetric(median(failed), "failed-1s")
			})
		}
	}
}

// BenchmarkHundredChanges: 100 membership changes (ten members joining
// and leaving in turn) under load (three keep-alive clients, one with a
// new connection per request, and every tenth change a long request of
// 3 s, as a download would be), live against reload. Metrics: failed
// requests, reloads, HAProxy processes after the changes and at most
// after any change, and seconds for the 100 runs.
func BenchmarkHundredChanges(b *testing.B) {
	for _, p := range joinPaths[:2] {
		b.Run(p.name, func(b *testing.B) {
			l, _ := joined(b, tmplOpts{}, "base1", "base2")
			var pool []member
			for i := 0; i < 10; i++ {
				pool = append(pool, startBackend(b, fmt.Sprintf("x%d", i)).member())
			}
			var failed, reloads, after, most, secs []float64
			for b.Loop() {
				r0, _ := l.reloads()
				keep, fresh := l.startLoad(3, true, 2*time.Millisecond), l.startLoad(1, false, 2*time.Millisecond)
				t0, peak := time.Now(), 0
				var long []*slowReq
				for c := 0; c < 100; c++ {
					event := "member-join"
					if (c/10)%2 == 1 {
						event = "member-leave"
					}
					if c%10 == 0 {
						long = append(long, l.slow(3000))
					}
					if r := l.hb(event, []member{pool[c%10]}, p.flags...); r.code != 0 {
						b.Fatalf("change %d: %s", c+1, r)
					}
					peak = max(peak, len(harness.HAProxyPIDs(l.out)))
				}
				secs = append(secs, time.Since(t0).Seconds())
				kr, fr := keep.stop(), fresh.stop()
				n := kr.failed + fr.failed
				for _, s := range long {
					if err := <-s.done; err != nil {
						n++
					}
				}
				r1, _ := l.reloads()
				failed = append(failed, float64(n))
				reloads = append(reloads, float64(r1-r0))
				after = append(after, float64(len(harness.HAProxyPIDs(l.out))))
				most = append(most, float64(peak))
			}
			b.ReportMetric(median(failed), "failed")
			b.ReportMetric(median(reloads), "reloads")
			b.ReportMetric(median(after), "procs-after")
			b.ReportMetric(median(most), "procs-max")
			b.ReportMetric(median(secs), "s-100-runs")
		})
	}
}

// BenchmarkS6Reload: the whole-process cost of an event whose reload is
// `s6-svc -2 DIR`, done in process, against the same command executed
// (s6-svc under another name, which serf-hb does not recognise), in turn
// in one run. 100 registered nodes, no check, no runtime API; DIR is a
// supervised service that ignores the signal, so that no HAProxy reload
// weighs on the figures. Metrics: wall and CPU (the process and its
// children) of each, their ratios, and the median of the differences
// within each pair (what the exec costs; steadier than the ratio of
// medians on a busy machine).
func BenchmarkS6Reload(b *testing.B) {
	l, web0 := benchLab(b, 100, tmplOpts{})
	svc := filepath.Join(l.scan, "idle")
	l.must(os.MkdirAll(svc, 0o755))
	l.must(os.WriteFile(filepath.Join(svc, "run"), []byte("#!/bin/sh\n# Takes SIGUSR2 and SIGHUP without dying.\ntrap : USR2 HUP\nwhile :; do sleep 1; done\n"), 0o755))
	if out, err := exec.Command("s6-svscanctl", "-a", l.scan).CombinedOutput(); err != nil {
		b.Fatalf("s6-svscanctl -a: %v: %s", err, out)
	}
	l.waitFor("the idle service to be up", 10*time.Second, func() error {
		return exec.Command("s6-svc", "-2", svc).Run()
	})
	real, err := exec.LookPath("s6-svc")
	l.must(err)
	execd := filepath.Join(l.dir, "s6-svc-exec")
	l.must(os.Symlink(real, execd))
	nodes := filepath.Join(l.dir, "nodes3")
	l.must(os.MkdirAll(nodes, 0o755))
	base := []string{"--nodes-dir", nodes, "--output", filepath.Join(l.dir, "s6.cfg"), "--check", "",
		"--haproxy-socket", "", "--haproxy-master-socket", ""}
	ms0 := []member{web0.member()}
	for i := 0; i < 100; i++ {
		ms0 = append(ms0, downMember(i))
	}
	if r := l.hb("member-join", ms0, append(base, "--reload", "")...); r.code != 0 {
		b.Fatalf("%s", r)
	}
	time.Sleep(1100 * time.Millisecond)
	extra := member{name: "extra", addr: netPrefix + "249", port: downPort}
	kinds := []struct {
		name, reload string
	}{{"in-process", "s6-svc -2 " + svc}, {"exec", execd + " -2 " + svc}}
	wall, cpu := map[string][]float64{}, map[string][]float64{}
	i := 0
	for b.Loop() {
		for _, k := range kinds {
			event := "member-join"
			if i%2 == 1 {
				event = "member-leave"
			}
			i++
			cmd := l.hbCmd(event, []member{extra}, append(base, "--reload", k.reload)...)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			t0 := time.Now()
			if err := cmd.Run(); err != nil || !strings.Contains(stderr.String(), "result=reloaded") {
				b.Fatalf("%s: %v: %s", k.name, err, stderr.String())
			}
			wall[k.name] = append(wall[k.name], ms(time.Since(t0)))
			cpu[k.name] = append(cpu[k.name], ms(cmd.ProcessState.UserTime()+cmd.ProcessState.SystemTime()))
		}
	}
	for _, k := range kinds {
		b.ReportMetric(median(wall[k.name]), "ms-wall-"+k.name)
		b.ReportMetric(median(cpu[k.name]), "ms-cpu-"+k.name)
	}
	b.ReportMetric(median(wall["exec"])/median(wall["in-process"]), "wall-exec/in-process")
	b.ReportMetric(median(cpu["exec"])/median(cpu["in-process"]), "cpu-exec/in-process")
	var dw, dc []float64
	for i := range wall["exec"] {
		dw = append(dw, wall["exec"][i]-wall["in-process"][i])
		dc = append(dc, cpu["exec"][i]-cpu["in-process"][i])
	}
	b.ReportMetric(median(dw), "ms-wall-exec-minus-in-process")
	b.ReportMetric(median(dc), "ms-cpu-exec-minus-in-process")
}

// eventBins are the serf-hb binaries BenchmarkEvents measures: this
// tree's, and those $SERF_HB_BIN_OLD names when set (older builds, e.g.
// of cbfa8c2, for the before/after table of docs/performance.md; several
// separated by ':', named old, old2, old3...), each on a lab of its own,
// one after the other in the same run.
func eventBins(b *testing.B) []struct{ name, path string } {
	bins := []struct{ name, path string }{{"new", harness.Bin("serf-hb")}}
	for i, old := range filepath.SplitList(os.Getenv("SERF_HB_BIN_OLD")) {
		if _, err := os.Stat(old); err != nil {
			b.Fatalf("SERF_HB_BIN_OLD: %v", err)
		}
		name := "old"
		if i > 0 {
			name = fmt.Sprintf("old%d", i+1)
		}
		bins = append(bins, struct{ name, path string }{name, old})
	}
	return bins
}

// cpuRun is an hbRun with its CPU time (the process and its children).
type cpuRun struct {
	hbRun
	cpu time.Duration
}

// timedJoin runs cmd, a join of nb, while ld runs; it returns when cmd
// started, when ld first got an answer from nb, and how long cmd took.
func (l *lab) timedJoin(cmd *exec.Cmd, ld *load, nb *backend) (t0, at time.Time, wall time.Duration) {
	l.t.Helper()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	t0 = time.Now()
	l.must(cmd.Start())
	exited := make(chan error, 1)
	go func() {
		err := cmd.Wait()
		wall = time.Since(t0)
		exited <- err
	}()
	l.waitFor("the new backend's first answer", time.Minute, func() error {
		if at, _ = ld.answered(nb.name); at.IsZero() {
			return errorf("no answer from %s yet", nb.name)
		}
		return nil
	})
	if err := <-exited; err != nil {
		l.t.Fatalf("serf-hb: %v: %s", err, stderr.String())
	}
	return t0, at, wall
}

// hbWith is l.hb with the serf-hb binary bin.
func (l *lab) hbWith(bin, event string, members []member, extra ...string) cpuRun {
	l.t.Helper()
	cmd := l.hbCmd(event, members, extra...)
	cmd.Path, cmd.Args[0] = bin, bin
	var stderr strings.Builder
	cmd.Stderr = &stderr
	r := cpuRun{hbRun: hbRun{start: time.Now()}}
	err := cmd.Run()
	r.wall = time.Since(r.start)
	r.stderr, r.code = stderr.String(), exitCode(err)
	if r.code != 0 {
		l.t.Fatalf("%s %s: %s", bin, event, r)
	}
	r.attrs = summary(r.stderr)
	r.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	return r
}

// BenchmarkEvents: the four events of issue 17 on the live path with full
// safety (the lab's flags: --check 'haproxy -c -f {}', --haproxy-socket,
// --haproxy-master-socket), each iteration in turn: a join (while a
// client sends 1,000 requests a second, a new connection each), a tag
// update (the weight tag changed), a leave with a long request open on
// the leaving server, and a failure (of a backend joined just before,
// untimed). Metrics, medians: ms-run-EVENT (serf-hb's whole process, what
// Serf waits for), ms-cpu-EVENT (its CPU time, children included) and
// ms-first-join (serf-hb's start to the new backend's first answer
// through HAProxy). With SERF_HB_BIN_OLD, the same for each older build
// (metrics suffixed -old, -old2...), on a lab of its own, the builds
// taking turns iteration by iteration so that each meets the machine in
// the same state; and the ratio of each build's median to this tree's
// (old/new-run-EVENT...).
//
// Each iteration also measures, on this tree's lab right after its events,
// the floors of BenchmarkFloor its events meet: the join's
// (ms-floor-join: serf-hb alone joining a node under the join's load,
// two commands, one read-back), the first answer's after serf-hb's own
// start-up (ms-floor-first), and an update's, leave's or failure's
// (ms-floor-change: serf-hb alone removing that node, one command, one
// read-back); and it reports the medians of
// the iterations' ratios (pairedFloors: join/floor...). The machine's
// speed moves by a third over minutes here, and a floor measured minutes
// apart from the events would move with it.
func BenchmarkEvents(b *testing.B) {
	for _, n := range benchSizes() {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			bins := eventBins(b)
			labs := make([]*lab, len(bins))
			var web0 *backend
			for j := range bins {
				var w *backend
				labs[j], w = benchLab(b, n, tmplOpts{})
				if j == 0 {
					web0 = w
				}
			}
			alone := aloneFlags(b, labs[0], web0, n)
			// The labs' first runs were this tree's binary; settle the
			// registries' indexes before measuring any.
			time.Sleep(1100 * time.Millisecond)
			m := map[string][]float64{}
			i := 0
			for b.Loop() {
				for j, bin := range bins {
					i++
					suffix := ""
					if bin.name != "new" {
						suffix = "-" + bin.name
					}
					eventsOnce(b, labs[j], bin.path, i, func(k string, v float64) { m[k+suffix] = append(m[k+suffix], v) })
				}
				// The extra node joins under the join's load and leaves
				// without: two changes, one like each kind of event.
				l := labs[0]
				join := ms(l.aloneRun(alone, "member-join", true).wall)
				leave := ms(l.aloneRun(alone, "member-leave", false).wall)
				state, cmd := l.roundTrips()
				floors := map[string]float64{
					"join":  join + 2*cmd + state,
					"first": l.firstFloorStart(b, fmt.Sprintf("efs%d", i)),
					// An update, a leave or a failure: one command at least.
					"change": leave + cmd + state,
				}
				for k, v := range floors {
					m[k] = append(m[k], v)
				}
				for _, f := range pairedFloors {
					got := m[f.metric]
					m[f.name] = append(m[f.name], got[len(got)-1]/floors[f.floor])
				}
			}
			for _, k := range []string{"join", "first", "change"} {
				b.ReportMetric(median(m[k]), "ms-floor-"+k)
			}
			for _, f := range pairedFloors {
				b.ReportMetric(median(m[f.name]), f.name)
			}
			for _, k := range eventMetrics {
				b.ReportMetric(median(m[k]), k)
				for _, bin := range bins[1:] {
					old := median(m[k+"-"+bin.name])
					b.ReportMetric(old, k+"-"+bin.name)
					if k != "ms-first-join" {
						b.ReportMetric(old/median(m[k]), bin.name+"/new-"+strings.TrimPrefix(k, "ms-"))
					}
				}
			}
		})
	}
}

// pairedFloors are the ratios BenchmarkEvents reports (name, the median
// of the iterations' ratios): this tree's metric over the floor it meets,
// measured right after it.
var pairedFloors = []struct{ name, metric, floor string }{
	{"join/floor", "ms-run-join", "join"},
	{"first/floor", "ms-first-join", "first"},
	{"update/floor", "ms-run-update", "change"},
	{"leave/floor", "ms-run-leave", "change"},
	{"failed/floor", "ms-run-failed", "change"},
}

// eventMetrics are BenchmarkEvents' metrics, for each build.
var eventMetrics = []string{"ms-run-join", "ms-first-join", "ms-run-update", "ms-run-leave", "ms-run-failed",
	"ms-cpu-join", "ms-cpu-update", "ms-cpu-leave", "ms-cpu-failed"}

// eventsOnce is one iteration of BenchmarkEvents on l with the serf-hb
// binary bin; i names its backends.
func eventsOnce(b *testing.B, l *lab, bin string, i int, add func(string, float64)) {
	nb := startBackend(b, fmt.Sprintf("ev%d", i))
	ld := l.startRate(1000)
	time.Sleep(100 * time.Millisecond)
	cmd := l.hbCmd("member-join", []member{nb.member()})
	cmd.Path, cmd.Args[0] = bin, bin
	t0, at, wall := l.timedJoin(cmd, ld, nb)
	ld.stop()
	add("ms-run-join", ms(wall))
	add("ms-cpu-join", ms(cmd.ProcessState.UserTime()+cmd.ProcessState.SystemTime()))
	add("ms-first-join", ms(at.Sub(t0)))

	up := nb.member()
	up.weight = 2 + i%50
	r := l.hbWith(bin, "member-update", []member{up})
	add("ms-run-update", ms(r.wall))
	add("ms-cpu-update", ms(r.cpu))

	s := l.slowTo(nb, 3000)
	r = l.hbWith(bin, "member-leave", []member{up})
	add("ms-run-leave", ms(r.wall))
	add("ms-cpu-leave", ms(r.cpu))
	s.conn.Close()

	fb := startBackend(b, fmt.Sprintf("evf%d", i))
	l.hbWith(bin, "member-join", []member{fb.member()})
	r = l.hbWith(bin, "member-failed", []member{fb.member()})
	add("ms-run-failed", ms(r.wall))
	add("ms-cpu-failed", ms(r.cpu))
	fb.stop()
	nb.stop()
}
