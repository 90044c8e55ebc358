package reliability

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/serf-hb/serf-hb/scripts/internal/harness"
)

// model is what the registry should hold: name -> port tag.
type model map[string]int

func (m model) clone() model {
	c := model{}
	for k, v := range m {
		c[k] = v
	}
	return c
}

func (m model) names() []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// render builds the output the trailer template must produce for m.
func (m model) render() []byte {
	var b bytes.Buffer
	b.WriteString(header)
	for _, n := range m.names() {
		fmt.Fprintf(&b, "    server %s %s:%d check\n", n, addrOf(n), m[n])
	}
	fmt.Fprintf(&b, "# end: %d servers\n", len(m))
	return b.Bytes()
}

func memberLine(name string, port int) string {
	return fmt.Sprintf("%s\t%s\tbackend\trole=backend,port=%d\n", name, addrOf(name), port)
}

// event is one Serf invocation of the crash test and the model after it.
type event struct {
	ev      string
	stdin   []byte
	touched []string // the names the event changes
	after   model
}

// nextEvent picks a join, leave or update that changes the output, keeping
// the registry between 10 and 40 nodes.
func nextEvent(rng *rand.Rand, cur model) event {
	after := cur.clone()
	var b strings.Builder
	var touched []string
	kind := rng.IntN(3)
	switch {
	case len(cur) < 10:
		kind = 0
	case len(cur) > 40:
		kind = 1
	}
	names := cur.names()
	switch kind {
	case 0: // join 1-3 new nodes
		for range 1 + rng.IntN(3) {
			var n string
			for {
				n = fmt.Sprintf("node%02d", rng.IntN(80))
				if _, ok := after[n]; !ok {
					break
				}
			}
			after[n] = 3000 + rng.IntN(100)
			b.WriteString(memberLine(n, after[n]))
			touched = append(touched, n)
		}
		return event{"member-join", []byte(b.String()), touched, after}
	case 1: // leave (or failure) of 1-2 nodes
		for range 1 + rng.IntN(2) {
			n := names[rng.IntN(len(names))]
			if _, ok := after[n]; !ok {
				continue
			}
			b.WriteString(memberLine(n, after[n]))
			delete(after, n)
			touched = append(touched, n)
		}
		ev := "member-leave"
		if rng.IntN(2) == 0 {
			ev = "member-failed"
		}
		return event{ev, []byte(b.String()), touched, after}
	default: // an update: a node's port changes
		n := names[rng.IntN(len(names))]
		p := after[n]
		for p == after[n] {
			p = 3000 + rng.IntN(100)
		}
		after[n] = p
		return event{"member-update", []byte(memberLine(n, p)), []string{n}, after}
	}
}

// Where a kill landed, worked out afterwards from the markers the fakes
// leave and from what changed.
const (
	phaseBefore    = "before any registry change (start, stdin, lock)"
	phaseRegistry  = "registry changing or changed, check not started"
	phaseCheck     = "during the check (or before the rename)"
	phaseInstalled = "output installed, reload not started"
	phaseReload    = "reload started, run not finished"
	phaseDone      = "run had already exited"
)

var phases = []string{phaseBefore, phaseRegistry, phaseCheck, phaseInstalled, phaseReload, phaseDone}

func hasMarker(dir, id string) bool {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".start."+id+".") {
			return true
		}
	}
	return false
}

// watcher reads the output and the registry in a loop while a run is
// being killed, and records anything that is neither the old nor the new
// state.
type watcher struct {
	stop    chan struct{}
	done    chan struct{}
	samples atomic.Int64
	mu      sync.Mutex
	err     error
}

func watch(s *sandbox, oldOut, newOut []byte, allowed map[string]bool) *watcher {
	w := &watcher{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for i := 0; ; i++ {
			select {
			case <-w.stop:
				return
			default:
			}
			var err error
			if i%2 == 0 {
				b, rerr := os.ReadFile(s.out)
				switch {
				case rerr != nil:
					err = fmt.Errorf("read output: %v", rerr)
				case !bytes.Equal(b, oldOut) && !bytes.Equal(b, newOut):
					_, perr := parseOutput(b)
					err = fmt.Errorf("output is neither the old nor the new file (%d bytes; %v)", len(b), perr)
				}
			} else {
				reg, rerr := readRegistry(s.nodes)
				if rerr != nil {
					err = rerr
				}
				for n := range reg.Nodes {
					if !allowed[n] {
						err = fmt.Errorf("registry holds unexpected node %s", n)
					}
				}
			}
			w.samples.Add(1)
			if err != nil {
				w.mu.Lock()
				if w.err == nil {
					w.err = err
				}
				w.mu.Unlock()
			}
		}
	}()
	return w
}

func (w *watcher) finish() error {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// The crash test: serf-hb is killed with SIGKILL at a random moment of a
// run, over and over. After each kill: the output is the old or the new
// complete file (and was so at every moment, per the watcher), node files
// are complete, leftover temp files are dot files that listing ignores;
// then the same event is delivered again in a normal run, which must
// converge: registry and output as expected, no temp files, and a reload
// of the final output.
func TestCrashKill(t *testing.T) {
	runs := 1000
	if heavy {
		runs = 2000
	}
	if harness.RaceEnabled {
		runs = 50
	}
	t.Run("check=sh", func(t *testing.T) { crashKill(t, runs, false) })
	if heavy {
		t.Run("check=haproxy", func(t *testing.T) { crashKill(t, 1000, true) })
	}
}

func crashKill(t *testing.T, runs int, realCheck bool) {
	var opts []sandboxOpt
	if realCheck {
		opts = append(opts, withHaproxyCheck)
	}
	s := newSandbox(t, opts...)
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("SERF_HB_SEED"); v != "" {
		seed, _ = strconv.ParseUint(v, 10, 64)
	}
	t.Logf("seed %d (SERF_HB_SEED=%d repeats this run)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 1))

	// Start from 20 nodes, and measure how long a normal run takes.
	cur := model{}
	for i := range 20 {
		cur[fmt.Sprintf("node%02d", i)] = 3000
	}
	var init strings.Builder
	for _, n := range cur.names() {
		init.WriteString(memberLine(n, cur[n]))
	}
	s.mustRun(0, "member-join", []byte(init.String()))
	if got, _ := os.ReadFile(s.out); !bytes.Equal(got, cur.render()) {
		t.Fatalf("the test's model of the output is wrong:\n%s\nwant:\n%s", got, cur.render())
	}
	var normal durations
	for i := range 15 {
		e := nextEvent(rng, cur)
		r := s.runID(e.ev, fmt.Sprintf("cal%d", i), e.stdin)
		if r.code != 0 {
			t.Fatalf("calibration run exited %d: %s", r.code, r.stderr)
		}
		normal = append(normal, r.took)
		cur = e.after
	}
	window := normal.pct(0.9) * 13 / 10
	t.Logf("a normal run takes %v; kills are spread over [0, %v]", normal, window)

	counts := map[string]int{}
	var maxRegTemps, maxOutTemps, listedWithTemps, doubleReloads, convergeReloads int
	var samples int64
	var killDelays durations
	for trial := range runs {
		e := nextEvent(rng, cur)
		oldOut, newOut := cur.render(), e.after.render()
		allowed := map[string]bool{}
		for n := range cur {
			allowed[n] = true
		}
		for n := range e.after {
			allowed[n] = true
		}
		id := fmt.Sprintf("k%d", trial)
		w := watch(s, oldOut, newOut, allowed)

		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		cmd := s.command(ctx, e.ev, id)
		cmd.Stdin = bytes.NewReader(e.stdin)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		delay := time.Duration(rng.Int64N(int64(window)))
		killDelays = append(killDelays, delay)
		time.Sleep(delay)
		killErr := cmd.Process.Signal(syscall.SIGKILL)
		waitErr := cmd.Wait()
		cancel()
		exited := errors.Is(killErr, os.ErrProcessDone) || exitCode(cmd, waitErr) >= 0
		if exited && exitCode(cmd, waitErr) != 0 {
			t.Fatalf("trial %d: run exited %d before the kill: %s", trial, exitCode(cmd, waitErr), stderr.String())
		}
		// The check and reload a killed run started go on as orphans.
		if err := s.settle([]string{s.marks, s.recs}, id, 30*time.Second); err != nil {
			t.Fatalf("trial %d: %v", trial, err)
		}
		if err := w.finish(); err != nil {
			t.Fatalf("trial %d (%s, killed after %v): %v", trial, e.ev, delay, err)
		}
		samples += w.samples.Load()

		out, err := os.ReadFile(s.out)
		if err != nil {
			t.Fatal(err)
		}
		outNew := bytes.Equal(out, newOut)
		if !outNew && !bytes.Equal(out, oldOut) {
			t.Fatalf("trial %d: after the kill the output is neither the old nor the new file", trial)
		}
		reg, err := readRegistry(s.nodes)
		if err != nil {
			t.Fatalf("trial %d: after the kill: %v", trial, err)
		}
		regChanged := false
		for _, n := range e.touched {
			_, inOld := cur[n]
			_, inNew := e.after[n]
			node, have := reg.Nodes[n]
			if have != inOld || (have && node.Tags["port"] != strconv.Itoa(cur[n])) {
				regChanged = true
			}
			if have != inOld && have != inNew {
				t.Fatalf("trial %d: node %s is neither as before nor as after", trial, n)
			}
		}
		outTemps := s.outTemps()
		regTemps := reg.Temps
		maxRegTemps = max(maxRegTemps, len(regTemps))
		maxOutTemps = max(maxOutTemps, len(outTemps))
		if len(regTemps) > 0 {
			// Listing must not pick a temp file up as a node.
			listed := strings.Count(s.mustRun(0, "", nil, "nodes").stdout, "\n") - 1
			if listed != len(reg.Nodes) {
				t.Fatalf("trial %d: serf-hb nodes lists %d nodes with temp files %v present; %d node files", trial, listed, regTemps, len(reg.Nodes))
			}
			listedWithTemps++
		}

		phase := phaseBefore
		switch {
		case exited:
			phase = phaseDone
		case hasMarker(s.recs, id):
			phase = phaseReload
		case outNew:
			phase = phaseInstalled
		case hasMarker(s.marks, id):
			phase = phaseCheck
		case regChanged:
			phase = phaseRegistry
		}
		counts[phase]++

		// The next normal run: Serf delivers the same lines again.
		before := len(s.records())
		cid := id + "c"
		r := s.runID(e.ev, cid, e.stdin)
		if r.code != 0 {
			t.Fatalf("trial %d (killed: %s): the next run exited %d: %s", trial, phase, r.code, r.stderr)
		}
		reg, err = readRegistry(s.nodes)
		if err != nil {
			t.Fatal(err)
		}
		regTemps = reg.Temps
		if !sameSet(reg.Names(), e.after.names()) {
			t.Fatalf("trial %d (killed: %s): registry did not converge: %s", trial, phase, diffSets(reg.Names(), e.after.names()))
		}
		if out, _ := os.ReadFile(s.out); !bytes.Equal(out, newOut) {
			t.Fatalf("trial %d (killed: %s): output did not converge", trial, phase)
		}
		if len(regTemps) > 0 || len(s.outTemps()) > 0 {
			t.Fatalf("trial %d (killed: %s): temp files left after the next run: %v %v", trial, phase, regTemps, s.outTemps())
		}
		if reloadPending(s.nodes) {
			t.Fatalf("trial %d (killed: %s): reload still pending after the next run", trial, phase)
		}
		recs := s.records()
		if len(recs) == 0 || !bytes.Equal(recs[len(recs)-1].content, newOut) {
			t.Fatalf("trial %d (killed: %s): the last reload did not see the final output", trial, phase)
		}
		if len(recs) > before {
			convergeReloads++
			if n := len(recs); n >= 2 && recs[n-2].id == id && bytes.Equal(recs[n-2].content, newOut) {
				doubleReloads++
			}
		}
		// Keep only the last record, drop the markers.
		for _, rec := range recs[:len(recs)-1] {
			os.Remove(filepath.Join(s.recs, rec.name))
		}
		for _, dir := range []string{s.marks, s.recs} {
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				if strings.HasPrefix(e.Name(), ".start.") || strings.HasPrefix(e.Name(), ".end.") {
					os.Remove(filepath.Join(dir, e.Name()))
				}
			}
		}
		cur = e.after
	}
	var ph []string
	for _, p := range phases {
		ph = append(ph, fmt.Sprintf("%s: %d", p, counts[p]))
	}
	t.Logf("kills by phase: %s", strings.Join(ph, "; "))
	// With enough kills every phase of a run must have been hit, or the
	// delays do not cover the run (about 3% land between install and
	// reload, the shortest phase).
	for _, p := range []string{phaseCheck, phaseReload, phaseInstalled} {
		if counts[p] == 0 && runs >= 500 {
			t.Errorf("no kill landed in phase %q: the kill window %v does not cover the run", p, window)
		}
	}
	check := "sh check (grep for the trailer)"
	if realCheck {
		check = "haproxy -c check"
	}
	report(t, fmt.Sprintf("%d SIGKILLs (%s), delay uniform in [0, %v]; normal run %v", runs, check, window.Round(time.Millisecond), normal),
		fmt.Sprintf("output = old or new complete file at every moment (%d watcher samples of output and registry); node files complete; temp files only dot files, not listed (checked %d times with temps present); the same event again converges: registry, output, no temps, no pending flag, last reload = final output", samples, listedWithTemps),
		fmt.Sprintf("pass %d/%d; kills by phase: %s; max temp files after a kill: registry %d, output dir %d; next run reloaded %d times (%d after a reload the killed run had already done)", runs, runs, strings.Join(ph, "; "), maxRegTemps, maxOutTemps, convergeReloads, doubleReloads))
}

// TestLockReleasedOnDeath: a run holding the lock (stuck in its check) is
// killed; the next run gets the lock at once, although the killed run's
// check command lives on as an orphan.
func TestLockReleasedOnDeath(t *testing.T) {
	const trials = 5
	var waits durations
	for trial := range trials {
		s := newSandbox(t)
		s.mustRun(0, "member-join", joinLines("web0"))
		pidFile := filepath.Join(s.root, "hang.pid")
		s.check = shellJoin(filepath.Join(toolsDir, "hang"), pidFile, "{}")
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		holder := s.command(ctx, "member-join", "holder")
		holder.Stdin = bytes.NewReader(joinLines("web1"))
		if err := holder.Start(); err != nil {
			t.Fatal(err)
		}
		var orphan int
		deadline := time.Now().Add(20 * time.Second)
		for orphan == 0 {
			if time.Now().After(deadline) {
				t.Fatal("the holder never reached its check")
			}
			b, _ := os.ReadFile(pidFile)
			orphan, _ = strconv.Atoi(strings.TrimSpace(string(b)))
			time.Sleep(5 * time.Millisecond)
		}
		t.Cleanup(func() { syscall.Kill(orphan, syscall.SIGKILL) })
		time.Sleep(time.Duration(trial) * 20 * time.Millisecond)
		holder.Process.Signal(syscall.SIGKILL)
		holder.Wait()
		cancel()
		if err := syscall.Kill(orphan, 0); err != nil {
			t.Fatalf("the orphaned check died with its parent (%v): the test proves nothing", err)
		}
		s.check = shellJoin(filepath.Join(toolsDir, "check-complete"), "{}", s.marks)
		s.extra = []string{"--lock-timeout", "3s"}
		start := time.Now()
		r := s.mustRun(0, "member-join", joinLines("web2"))
		waits = append(waits, time.Since(start))
		if strings.Contains(r.stderr, "lock") {
			t.Fatalf("next run: %s", r.stderr)
		}
		names, err := s.outputNames()
		if err != nil || !sameSet(names, []string{"web0", "web1", "web2"}) {
			t.Fatalf("after the holder's death: output %v (%v), want web0 web1 web2", names, err)
		}
		if _, err := exec.Command("kill", "-0", strconv.Itoa(orphan)).CombinedOutput(); err != nil {
			t.Fatalf("the orphaned check is gone before the next run finished: the test proves nothing")
		}
		syscall.Kill(orphan, syscall.SIGKILL)
	}
	report(t, fmt.Sprintf("%d holders killed inside the lock (in a hanging check)", trials),
		"the next run (--lock-timeout 3s) succeeds while the holder's orphaned check still runs; output holds the killed run's node and the new one",
		fmt.Sprintf("pass %d/%d; next run took %v", trials, trials, waits))
}
