package rolling

import (
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/serf-hb/serf-hb/scripts/internal/harness"
)

// Phases the load counts requests in.
const (
	phaseSteady  int32 = iota // every backend joined, before the deploy
	phaseRolling              // the rolling deploy
	phaseSettle               // after the last rejoin, until the views agree
	phaseKill                 // three backends killed, until the views agree
)

var phaseNames = []string{"steady", "rolling deploy", "settle", "kill"}

// Serf's own words (hashicorp/serf cmd/serf/command/agent/invoke.go,
// warnSlow = 1 s; the same in Debian's 0.9.4 and upstream's 0.10.2):
// "[WARN] agent: Script '%s' slow, execution exceeding %v".
var (
	slowRe   = regexp.MustCompile(`\[WARN\] agent: Script '.*' slow, execution exceeding`)
	invokeRe = regexp.MustCompile(`\[ERR\] agent: Error invoking script`)
)

// backendCount is the number of backends: 60, or SERF_HB_ROLLING_BACKENDS
// (4 to 200) for a quick run by hand.
func backendCount() int {
	if n, err := strconv.Atoi(os.Getenv("SERF_HB_ROLLING_BACKENDS")); err == nil && n >= 4 && n <= 200 {
		return n
	}
	return 60
}

// stopEarly: SERF_HB_ROLLING_STOP=early stops each app at its agent's
// leave, as a deploy that does not wait for the balancer would; the
// suite must then count failed requests (shown in docs/testing.md). For
// runs by hand only.
var stopEarly = os.Getenv("SERF_HB_ROLLING_STOP") == "early"

// restartPause is the time between a backend's agent exiting and its new
// app and agent starting (see the rolling loop).
const restartPause = 3 * time.Second

// TestRollingDeploy: a rolling deploy of every backend under steady load
// loses no request, never reloads HAProxy and never makes Serf wait over
// 1 s for serf-hb; then three backends die. At the end HAProxy, the file,
// the registry and Serf agree.
func TestRollingDeploy(t *testing.T) {
	n := backendCount()
	c := newCluster(t)
	start := time.Now()

	// --- all join -----------------------------------------------------------
	c.logs.Mark()
	for i := 0; i < n; i++ {
		b := c.addBackend(i)
		c.startApp(b)
		c.startAgent(b)
	}
	joinTook, ok := c.converge(90 * time.Second)
	if !ok {
		t.FailNow()
	}
	t.Logf("%d backends joined: every view agrees %v after the last agent started", n, joinTook.Round(time.Millisecond))
	before, err := harness.ShowProc(c.master)
	c.must(err)
	if len(before.Workers) != 1 {
		c.fatalf("show proc: workers %v, want one", before.Workers)
	}
	worker := before.Workers[0]

	l := startLoad("http://" + c.frontend() + "/")
	defer l.stop()
	// Steady load before the first change.
	c.waitFor("the load's first 100 answers", 10*time.Second, func() error {
		if tl := l.tally(phaseSteady); tl.ok < 100 {
			return fmt.Errorf("%d answers", tl.ok)
		}
		return nil
	})

	// --- the rolling deploy ---------------------------------------------------
	// For each backend, one after another: its agent leaves gracefully
	// (SIGINT); its app keeps serving until HAProxy has taken it out of
	// rotation (drained, in maintenance or deleted: no new request goes
	// to it); then the app stops (finishing what it has), starts again,
	// and a new agent of the same name rejoins. The next backend's leave
	// follows at once: the rejoin's own events overlap it.
	c.logs.Mark()
	l.setPhase(phaseRolling)
	rollStart := time.Now()
	type leave struct {
		name     string
		at, out  time.Time     // SIGINT; HAProxy had it out of rotation
		agentOut time.Duration // SIGINT to the agent's exit
		appStop  time.Duration // SIGINT to the app's SIGTERM
	}
	var leaves []leave
	var lastChange time.Time
	crashed := ""
	for _, b := range c.backends {
		if c.haproxy.Exited() {
			crashed = "HAProxy's master exited during the rolling deploy"
			break
		}
		lv := leave{name: b.name, at: time.Now()}
		c.must(b.agent.Signal(syscall.SIGINT))
		if stopEarly {
			c.stopApp(b)
		}
		err := harness.Wait(b.name+" out of HAProxy's rotation", 20*time.Second, 20*time.Millisecond, func() error {
			if c.haproxy.Exited() {
				return harness.Permanent(fmt.Errorf("HAProxy exited"))
			}
			hs, err := harness.ServersState(c.admin, "nodes")
			if err != nil {
				return err
			}
			if s, ok := hs[b.name]; ok && s.Admin == 0 {
				return fmt.Errorf("%s still in rotation (op %d)", b.name, s.Op)
			}
			return nil
		})
		if err != nil {
			crashed = err.Error()
			break
		}
		lv.out = time.Now()
		if !b.agent.Wait(15 * time.Second) {
			c.fatalf("%s's agent still running 15s after SIGINT%s", b.name, c.logs.Since())
		}
		lv.agentOut = time.Since(lv.at)
		lv.appStop = time.Since(lv.at)
		leaves = append(leaves, lv)
		if !stopEarly {
			c.stopApp(b)
		}
		// The new version takes a moment to start, as a deploy's does:
		// a rejoin within the leave's own gossip (its intent is still
		// passed on between the other agents for a few seconds) has
		// twice left the balancer's agent holding the rejoined member
		// as "leaving" for good, alive and serving, with no event.
		time.Sleep(restartPause)
		c.startApp(b)
		c.startAgent(b)
		lastChange = time.Now()
	}
	rollEnd := time.Now()
	if crashed != "" {
		l.stop()
		c.errorf("rolling deploy stopped after %d of %d backends: %s\n%s", len(leaves), n, crashed, harness.Tail(c.hlog))
	}

	// --- settle, then three backends die -----------------------------------
	var settleTook, killTook time.Duration
	var killAt time.Time
	if crashed == "" {
		l.setPhase(phaseSettle)
		_, ok := c.converge(90 * time.Second)
		settleTook = time.Since(lastChange)
		c.logs.Mark()
		l.setPhase(phaseKill)
		for _, i := range []int{0, n / 3, 2 * n / 3} {
			c.kill(c.backends[i])
		}
		killAt = time.Now()
		if ok {
			c.converge(90 * time.Second)
		}
		killTook = time.Since(killAt)
	}
	l.stop()
	end := time.Now()

	// --- figures and assertions ---------------------------------------------
	runs := c.hbRuns()
	var rollRuns, allRuns []time.Duration
	results := map[string]int{}
	var notLive []string // the runs that did not apply their change live, and why
	for _, r := range runs {
		allRuns = append(allRuns, r.took)
		results[r.attrs["result"]]++
		if res := r.attrs["result"]; res != "applied" && res != "unchanged" {
			notLive = append(notLive, fmt.Sprintf("%s result=%s live=%q err=%q", r.attrs["msg"], res, r.attrs["live"], r.attrs["err"]))
		}
		if !r.start.Before(rollStart) && !r.end.After(rollEnd) {
			rollRuns = append(rollRuns, r.took)
		}
	}
	// The delay an app must keep serving for after its leave: from the
	// agent's SIGINT to the start of the balancer's run that removed it,
	// and to HAProxy showing it out of rotation.
	//
	// Serf reports a graceful leave as member-failed when the balancer's
	// agent has not received the node's leave intent by the time the node
	// stops answering: that run removes the server alike, and such leaves
	// are named apart. A removing run must start before the deploy ends:
	// the kill phase's member-failed runs remove names that left earlier.
	var toRun, toOut, toExit, toStop []time.Duration
	var missing, asFailed []string
	for _, lv := range leaves {
		toOut = append(toOut, lv.out.Sub(lv.at))
		toExit = append(toExit, lv.agentOut)
		toStop = append(toStop, lv.appStop)
		found := ""
		for _, r := range runs {
			if ev := r.attrs["event"]; (ev == "member-leave" || ev == "member-failed") && r.end.After(lv.at) && r.start.Before(rollEnd) && r.removes(lv.name) {
				toRun = append(toRun, r.start.Sub(lv.at))
				found = ev
				break
			}
		}
		switch found {
		case "":
			missing = append(missing, lv.name)
		case "member-failed":
			asFailed = append(asFailed, lv.name)
		}
	}
	// Serf's failure detection: the kills to the runs of member-failed.
	var toFailed []time.Duration
	if !killAt.IsZero() {
		for _, r := range runs {
			if r.attrs["event"] == "member-failed" && r.start.After(killAt) {
				toFailed = append(toFailed, r.start.Sub(killAt))
			}
		}
	}
	slow, slowLines := c.countLog(c.serfLog, slowRe)
	invokeErrs, _ := c.countLog(c.serfLog, invokeRe)
	after, procErr := harness.ShowProc(c.master)

	for p, name := range phaseNames {
		t.Logf("load, %s: %v", name, l.tally(int32(p)))
	}
	t.Logf("handler runs: %d in all (%v), median/p95/max %s; during the rolling deploy %d, median/p95/max %s",
		len(allRuns), results, stats(allRuns), len(rollRuns), stats(rollRuns))
	t.Logf("Serf's slow-handler warnings: %d; failed handler invocations: %d", slow, invokeErrs)
	t.Logf("leave (SIGINT) to the balancer's removing run: median/p95/max %s (leaves without one: %v; reported by Serf as member-failed: %v); to out of HAProxy's rotation: %s; to the agent's exit: %s",
		stats(toRun), missing, asFailed, stats(toOut), stats(toExit))
	if stopEarly {
		t.Logf("SERF_HB_ROLLING_STOP=early: each app stopped at its agent's leave")
	} else {
		t.Logf("each app kept serving until HAProxy showed it out of rotation (polled every 20 ms, at most 20 s) and its agent had exited, then stopped gracefully: SIGINT to the app's SIGTERM %s", stats(toStop))
	}
	t.Logf("rolling deploy of %d backends: %v; views agree %v after the last rejoin's agent started; %v after the kills; whole test %v",
		len(leaves), rollEnd.Sub(rollStart).Round(time.Millisecond), settleTook.Round(time.Millisecond), killTook.Round(time.Millisecond), end.Sub(start).Round(time.Second))
	t.Logf("kills to the member-failed runs: %v", toFailed)
	t.Logf("HAProxy: reloads %d -> %d, failed %d -> %d, workers %v -> %v (show proc error: %v)",
		before.Reloads, after.Reloads, before.Failed, after.Failed, before.Workers, after.Workers, procErr)

	if tl := l.tally(phaseRolling); tl.failed > 0 {
		var first []string
		for _, f := range tl.fails[:min(len(tl.fails), 10)] {
			first = append(first, fmt.Sprintf("%s +%v: %s", f.at.Format("15:04:05.000"), f.at.Sub(rollStart).Round(time.Millisecond), f.reason))
		}
		c.errorf("%d requests failed during the rolling deploy, want 0; the first:\n%s", tl.failed, strings.Join(first, "\n"))
	}
	if tl := l.tally(phaseRolling); tl.ok < 1000 && crashed == "" {
		c.errorf("only %d requests answered during the rolling deploy: the load did not run", tl.ok)
	}
	if procErr != nil || after.Reloads != before.Reloads || len(after.Workers) != 1 || after.Workers[0] != worker || results["reloaded"] > 0 {
		c.errorf("HAProxy reloaded (or died): reloads %d -> %d, workers %v -> %v, %d runs result=reloaded, show proc: %v; runs not applied live:\n%s",
			before.Reloads, after.Reloads, before.Workers, after.Workers, results["reloaded"], procErr, strings.Join(notLive, "\n"))
	}
	if slow > 0 {
		c.errorf("Serf warned %d times of a handler run over 1 s:\n%s", slow, strings.Join(slowLines[:min(len(slowLines), 5)], "\n"))
	}
	if invokeErrs > 0 {
		c.errorf("Serf logged %d failed handler invocations", invokeErrs)
	}
	if len(missing) > 0 {
		var mention []string
		for _, r := range runs {
			for _, name := range missing {
				if slices.ContainsFunc(slices.Collect(maps.Values(r.attrs)), func(v string) bool { return slices.Contains(strings.Split(v, ","), name) }) {
					mention = append(mention, fmt.Sprint(r.attrs))
				}
			}
		}
		c.errorf("leaves of %v had no member-leave or member-failed run removing them in serf-hb's log; the runs naming them:\n%s",
			missing, strings.Join(mention, "\n"))
	}
	if crashed == "" {
		v := c.views()
		if d := v.agree(c.want()); d != "" {
			c.errorf("at the end the views differ: %s\n%v", d, v)
		}
		if len(v.maint) > 0 {
			t.Logf("HAProxy keeps %d servers in maintenance outside the file: %v", len(v.maint), v.maint)
		}
	}
}

// stats formats the median, 95th percentile and maximum of ds.
func stats(ds []time.Duration) string {
	if len(ds) == 0 {
		return "-"
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	q := func(p float64) time.Duration { return s[min(len(s)-1, int(p*float64(len(s))))].Round(time.Millisecond) }
	return fmt.Sprintf("%v/%v/%v", q(0.5), q(0.95), s[len(s)-1].Round(time.Millisecond))
}
