package reliability

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/serf-hb/serf-hb/scripts/internal/harness"
)

// The lab's handlers truncated the live config before rendering it: with
// 50 concurrent runs the final config lost servers or was invalid in 4-5
// trials of 10, and reloads saw 0-byte files. These tests run serf-hb
// processes at once, all released together, and check the end state and
// every file a reload saw.

// proc is one concurrent run: its event, stdin, and what came of it.
type proc struct {
	ev    string // "" for a subcommand
	args  []string
	stdin []byte
	id    string
	res   result
}

// runConcurrently starts every proc with its stdin held back, then releases
// them all at once, so that they race for the lock; it returns when all
// have exited. A proc whose release is delayed (a render "in between")
// gets its delay from delay.
func (s *sandbox) runConcurrently(procs []*proc, delay func(i int) time.Duration) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	type started struct {
		p      *proc
		stdin  io.WriteCloser
		stdout bytes.Buffer
		stderr bytes.Buffer
		start  time.Time
		wait   func() error
	}
	all := make([]*started, len(procs))
	for i, p := range procs {
		st := &started{p: p}
		cmd := s.command(ctx, p.ev, p.id, p.args...)
		in, err := cmd.StdinPipe()
		if err != nil {
			s.t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = &st.stdout, &st.stderr
		if err := cmd.Start(); err != nil {
			s.t.Fatalf("start serf-hb: %v", err)
		}
		st.stdin, st.wait = in, func() error {
			err := cmd.Wait()
			p.res.code = exitCode(cmd, err)
			return err
		}
		all[i] = st
	}
	var wg sync.WaitGroup
	for i, st := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if delay != nil {
				time.Sleep(delay(i))
			}
			st.start = time.Now()
			st.stdin.Write(st.p.stdin)
			st.stdin.Close()
			st.wait()
			st.p.res.took = time.Since(st.start)
			st.p.res.stderr = st.stderr.String()
			st.p.res.stdout = st.stdout.String()
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		s.t.Fatalf("concurrent runs did not finish within 5 minutes")
	}
}

// checkEnd checks a trial's end state: every run exited 0, the registry
// holds exactly want, the output is complete, lists exactly want and passes
// haproxy -c, no temp files are left, every reload saw a complete file and
// the last one saw the final output. It returns the number of reloads.
func (s *sandbox) checkEnd(procs []*proc, want []string) (int, error) {
	for _, p := range procs {
		if p.res.code != 0 {
			return 0, fmt.Errorf("run %s exited %d: %s", p.id, p.res.code, p.res.stderr)
		}
	}
	reg, err := readRegistry(s.nodes)
	if err != nil {
		return 0, err
	}
	if !sameSet(reg.Names(), want) {
		return 0, fmt.Errorf("registry holds %d nodes, want %d: %s", len(reg.Nodes), len(want), diffSets(reg.Names(), want))
	}
	if len(reg.Temps) > 0 || len(s.outTemps()) > 0 {
		return 0, fmt.Errorf("temp files left: registry %v, output dir %v", reg.Temps, s.outTemps())
	}
	names, err := s.outputNames()
	if err != nil {
		return 0, err
	}
	if !sameSet(names, want) {
		return 0, fmt.Errorf("output lists %d servers, want %d: %s", len(names), len(want), diffSets(names, want))
	}
	if err := haproxyCheck(s.out); err != nil {
		return 0, err
	}
	recs := s.records()
	if len(recs) == 0 {
		return 0, fmt.Errorf("no reload at all")
	}
	for _, r := range recs {
		if _, err := parseOutput(r.content); err != nil {
			return 0, fmt.Errorf("reload %s saw an incomplete file: %v", r.name, err)
		}
	}
	final, _ := os.ReadFile(s.out)
	if last := recs[len(recs)-1]; !bytes.Equal(last.content, final) {
		n, _ := parseOutput(last.content)
		return 0, fmt.Errorf("the last reload (%s) saw %d servers, not the final output", last.name, len(n))
	}
	if reloadPending(s.nodes) {
		return 0, fmt.Errorf("a reload is still marked pending")
	}
	return len(recs), nil
}

func diffSets(got, want []string) string {
	g, w := map[string]bool{}, map[string]bool{}
	for _, x := range got {
		g[x] = true
	}
	for _, x := range want {
		w[x] = true
	}
	var missing, extra []string
	for x := range w {
		if !g[x] {
			missing = append(missing, x)
		}
	}
	for x := range g {
		if !w[x] {
			extra = append(extra, x)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	return fmt.Sprintf("missing %v, extra %v", missing, extra)
}

func TestConcurrentJoins(t *testing.T) {
	const procsPerTrial = 200
	trials, haproxy := 3, false
	if heavy {
		trials, haproxy = 20, true
	}
	if harness.RaceEnabled {
		trials = 2
	}
	var took, runs durations
	reloads := 0
	for trial := range trials {
		var opts []sandboxOpt
		if haproxy {
			opts = append(opts, withHaproxyCheck)
		}
		s := newSandbox(t, opts...)
		names := nodeNames("web", 0, procsPerTrial)
		procs := make([]*proc, len(names))
		for i, n := range names {
			procs[i] = &proc{ev: "member-join", stdin: joinLines(n), id: fmt.Sprintf("t%d-%d", trial, i)}
		}
		start := time.Now()
		s.runConcurrently(procs, nil)
		took = append(took, time.Since(start))
		for _, p := range procs {
			runs = append(runs, p.res.took)
		}
		n, err := s.checkEnd(procs, names)
		if err != nil {
			t.Fatalf("trial %d of %d: %v", trial+1, trials, err)
		}
		reloads += n
	}
	check := "check-complete (sh+grep)"
	if haproxy {
		check = "haproxy -c"
	}
	report(t, fmt.Sprintf("%d trials x %d concurrent joins", trials, procsPerTrial),
		"exit 0 for all; registry = 200 files; output = exactly the 200 servers, complete, haproxy -c valid; every reload saw a complete file; last reload = final output; no temp files; no pending reload; check during runs: "+check,
		fmt.Sprintf("pass %d/%d; %d reloads in all (%.0f per trial); trial wall time %v; run time %v", trials, trials, reloads, float64(reloads)/float64(trials), took, runs))
}

func TestConcurrentMixed(t *testing.T) {
	const joins, leaves, renders = 100, 100, 20
	trials := 3
	if heavy {
		trials = 20
	}
	if harness.RaceEnabled {
		trials = 2
	}
	var took durations
	reloads := 0
	for trial := range trials {
		s := newSandbox(t)
		old := nodeNames("old", 0, leaves)
		s.mustRun(0, "member-join", joinLines(old...))
		s.clearRecords()
		fresh := nodeNames("new", 0, joins)
		var procs []*proc
		for i := range joins {
			procs = append(procs,
				&proc{ev: "member-join", stdin: joinLines(fresh[i]), id: fmt.Sprintf("j%d", i)},
				&proc{ev: "member-leave", stdin: joinLines(old[i]), id: fmt.Sprintf("l%d", i)})
			if i%(joins/renders) == 0 {
				procs = append(procs, &proc{args: []string{"render"}, id: fmt.Sprintf("r%d", i)})
			}
		}
		// The renders are released over the whole burst, not at its start.
		delay := func(i int) time.Duration {
			if procs[i].ev == "" {
				return time.Duration(i) * 5 * time.Millisecond
			}
			return 0
		}
		start := time.Now()
		s.runConcurrently(procs, delay)
		took = append(took, time.Since(start))
		n, err := s.checkEnd(procs, fresh)
		if err != nil {
			t.Fatalf("trial %d of %d: %v", trial+1, trials, err)
		}
		reloads += n
		if strings.Count(s.mustRun(0, "", nil, "nodes").stdout, "\n") != joins+1 {
			t.Fatalf("trial %d: serf-hb nodes does not list %d nodes", trial+1, joins)
		}
	}
	report(t, fmt.Sprintf("%d trials x (%d joins + %d leaves of registered nodes + %d renders)", trials, joins, leaves, renders),
		"exit 0 for all; registry = exactly the 100 joined; output = exactly them, complete, haproxy -c valid; every reload saw a complete file; last reload = final output; no temp files",
		fmt.Sprintf("pass %d/%d; %d reloads in all; trial wall time %v", trials, trials, reloads, took))
}
