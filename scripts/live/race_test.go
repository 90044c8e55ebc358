package live

// The removal race of issue 16: HAProxy 2.6 accepts `del server` for a
// server that a request waiting to retry still references (it counts in
// neither scur nor qcur), and its worker then crashes (haproxy/haproxy#2298
// and #2323, fixed in 2.9). A member whose app has just stopped is exactly
// that server: requests refused by it wait HAProxy's 1 s turn-around before
// their retry, and serf-hb's leave or failed run comes within it.

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/serf-hb/serf-hb/internal/haproxytest"
	"github.com/serf-hb/serf-hb/scripts/internal/harness"
)

// TestRemovalRace: under a steady load through the frontend, a member's
// app stops and 0.3 s later serf-hb removes the member (member-leave and
// member-failed in turn), before HAProxy's health checks could mark it
// down; then the app comes back and the member rejoins. Every cycle, and
// whatever the template: no HAProxy worker dies, the master stays up, and
// at the end every member is in rotation and every server HAProxy runs
// that the installed file does not have is in maintenance. Each failed
// request is logged with its cycle and reason; run it with -v for the
// figures.
//
//   - embedded: serf-hb's embedded template, 64 cycles ($SERF_HB_RACE_CYCLES
//     to change): at most 1 request in 10,000 fails.
//   - no-redispatch: the embedded template without its retry lines
//     (retries, option redispatch, retry-on), as a template of a user's own
//     may be, a quarter of the cycles: requests that wait to retry on the
//     removed server fail then, and are counted, not judged; HAProxy must
//     not crash for them (the template cannot be what keeps it up).
func TestRemovalRace(t *testing.T) {
	cycles := 64
	if v := os.Getenv("SERF_HB_RACE_CYCLES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			t.Fatalf("SERF_HB_RACE_CYCLES=%q: want a number of cycles from 1 to 10000", v)
		}
		cycles = n
	}
	t.Run("embedded", func(t *testing.T) {
		removalRace(t, tmplOpts{embedded: true}, cycles, true)
	})
	t.Run("no-redispatch", func(t *testing.T) {
		removalRace(t, tmplOpts{embedded: true, noRetry: true}, max(cycles/4, 1), false)
	})
}

// removalRace runs the cycles of TestRemovalRace with template o; lossless
// asks for at most 1 failed request in 10,000.
func removalRace(t *testing.T, o tmplOpts, cycles int, lossless bool) {
	const (
		rate = 250 // requests a second, each on a new connection
		// gap is from the app's stop to serf-hb's removal run: shorter
		// than HAProxy's retry turn-around (1 s) and than its health
		// checks take to mark the server down (3 checks 2 s apart).
		gap = 300 * time.Millisecond
		// away is how long the app stays stopped after the removal run.
		away = 200 * time.Millisecond
		// back is how long the member serves between its rejoin and the
		// next cycle.
		back = 500 * time.Millisecond
		// perCycle bounds a cycle, runs included, for the whole test's
		// bound.
		perCycle = 5 * time.Second
	)
	version := haproxyVersion(t)
	l, bs := joined(t, o, "web1", "web2", "app")
	app := bs["app"]
	w := l.watchWorker()
	ld := l.startRateFor(rate, time.Duration(cycles)*perCycle+30*time.Second)
	time.Sleep(back)

	type mark struct {
		n       int
		event   string
		stopped time.Time
	}
	var marks []mark
	var died string
	start := time.Now()
	deadline := start.Add(time.Duration(cycles) * perCycle)
	events := map[string]int{}
	// HAProxy is checked before and after every serf-hb run: a run
	// against a dead HAProxy would only add noise.
	for i := 1; i <= cycles && time.Now().Before(deadline); i++ {
		event := "member-leave"
		if i%2 == 0 {
			event = "member-failed"
		}
		m := mark{n: i, event: event, stopped: time.Now()}
		marks = append(marks, m)
		app.pause()
		time.Sleep(time.Until(m.stopped.Add(gap)))
		if died = w.check(); died != "" {
			break
		}
		if r := l.hb(event, []member{app.member()}); r.code != 0 {
			t.Errorf("cycle %d: %s run: %s", i, event, r)
		}
		events[event]++
		time.Sleep(away)
		if died = w.check(); died != "" {
			break
		}
		l.must(app.resume())
		if r := l.hb("member-join", []member{app.member()}); r.code != 0 {
			t.Errorf("cycle %d: member-join run: %s", i, r)
		}
		time.Sleep(back)
		if died = w.check(); died != "" {
			break
		}
	}
	res := ld.stop()
	took := time.Since(start)
	done := len(marks)
	total := res.ok + int64(res.failed)

	// Each failure with its cycle and reason, and the reasons counted.
	at, errs := ld.failures()
	order := make([]int, len(at))
	for k := range order {
		order[k] = k
	}
	sort.SliceStable(order, func(i, j int) bool { return at[order[i]].Before(at[order[j]]) })
	reasons, byEvent := map[string]int{}, map[string]int{}
	var lines []string
	for _, k := range order {
		sent, why := at[k], failReason(errs[k])
		reasons[why]++
		c := sort.Search(len(marks), func(j int) bool { return marks[j].stopped.After(sent) }) - 1
		where, event := "before the first cycle", "before the first cycle"
		if c >= 0 {
			event = marks[c].event
			where = fmt.Sprintf("cycle %d (%s), sent at %s, %+dms after the app stopped", marks[c].n, marks[c].event,
				sent.UTC().Format("15:04:05.000"), sent.Sub(marks[c].stopped).Milliseconds())
		}
		byEvent[event]++
		lines = append(lines, where+": "+why)
	}
	for k, line := range lines {
		if k == 40 {
			t.Logf("... %d more failures", len(lines)-k)
			break
		}
		t.Logf("failed: %s", line)
	}
	t.Logf("failure reasons: %s", countsString(reasons))
	t.Logf("failures by the cycle's removal: %s", countsString(byEvent))
	logged, notOK := l.abnormalRequests()
	for k, line := range notOK {
		if k == 20 {
			t.Logf("... %d more", len(notOK)-k)
			break
		}
		t.Logf("HAProxy logged: %s", line)
	}
	t.Logf("HAProxy logged as not normal (status, termination state, retried): %s", countsString(logged))
	summary := fmt.Sprintf("%s: %d of %d cycles begun (%d member-leave, %d member-failed) in %v, %d requests, %d failed",
		version, done, cycles, events["member-leave"], events["member-failed"], took.Round(time.Second), total, res.failed)
	t.Logf("%s: %s", t.Name(), summary)

	if died != "" {
		// When: the poll's time, against the cycle it fell in.
		when := ""
		if at := w.died(); !at.IsZero() {
			c := sort.Search(len(marks), func(j int) bool { return marks[j].stopped.After(at) }) - 1
			if c >= 0 {
				when = fmt.Sprintf(" in cycle %d (%s), seen %dms after the app stopped", marks[c].n, marks[c].event, at.Sub(marks[c].stopped).Milliseconds())
			}
		}
		t.Fatalf("HAProxy died%s: %s\n%s", when, died, summary)
	}
	if done < cycles {
		t.Errorf("only %d of %d cycles in %v", done, cycles, took.Round(time.Second))
	}
	if total < int64(rate)*int64(done)/2 {
		t.Errorf("%d requests in %d cycles: the load did not keep its rate of %d a second", total, done, rate)
	}
	if lossless && int64(res.failed)*10000 > total {
		t.Errorf("%d of %d requests failed: over 1 in 10,000", res.failed, total)
	}
	l.assertStraysInMaint()
	// The app rejoined last: every member is in the file and in rotation.
	l.healed(bs["web1"], bs["web2"], app)
}

// haproxyVersion is the HAProxy the tests run, as "HAProxy 2.6.12-1+deb12u4".
func haproxyVersion(t testing.TB) string {
	t.Helper()
	v := haproxytest.Version(harness.Bin("haproxy"))
	f := strings.Fields(v)
	if len(f) < 3 || f[1] != "version" {
		t.Fatalf("%s -v: no version in %q", harness.Bin("haproxy"), v)
	}
	return "HAProxy " + f[2]
}

// workerWatch follows HAProxy's master and current worker through the
// master CLI, and the master's log of its workers' exits.
// Besides the checks the test makes between its steps, it polls the log
// and the master's PID every 50 ms until the test ends, to tell when
// HAProxy died.
type workerWatch struct {
	l       *lab
	master  int
	worker  int
	reloads int
	mu      sync.Mutex
	diedAt  time.Time // first seen dead by the poll
}

func (l *lab) watchWorker() *workerWatch {
	l.t.Helper()
	p, err := l.procs()
	l.must(err)
	if p.Current == 0 {
		l.t.Fatalf("show proc: no current worker: %+v", p)
	}
	w := &workerWatch{l: l, master: p.MasterPID, worker: p.Current, reloads: p.Reloads}
	stop, done := make(chan struct{}), make(chan struct{})
	l.t.Cleanup(func() { close(stop); <-done })
	go func() {
		defer close(done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if len(workerExits(l.hlog)) > 0 || syscall.Kill(w.master, 0) != nil {
				w.mu.Lock()
				w.diedAt = time.Now()
				w.mu.Unlock()
				return
			}
		}
	}()
	return w
}

// died returns when the poll first saw HAProxy dead, zero if it did not.
func (w *workerWatch) died() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.diedAt
}

// check says how HAProxy died since the watch began, "" if it did not: a
// worker that exited with a non-zero code, a master that went away or was
// replaced, a current worker replaced without a reload. A reload's new
// worker is followed.
func (w *workerWatch) check() string {
	if exits := workerExits(w.l.hlog); len(exits) > 0 {
		return strings.Join(exits, "; ")
	}
	p, err := w.l.procs()
	if err != nil {
		return fmt.Sprintf("master CLI: %v", err)
	}
	switch {
	case p.MasterPID != w.master:
		return fmt.Sprintf("master %d replaced by %d", w.master, p.MasterPID)
	case p.Current == 0:
		return fmt.Sprintf("master %d has no current worker", w.master)
	case p.Current != w.worker && p.Reloads == w.reloads:
		return fmt.Sprintf("worker %d replaced by %d without a reload", w.worker, p.Current)
	}
	w.worker, w.reloads = p.Current, p.Reloads
	return ""
}

// workerExit is the master's line for a worker that exited (2.6:
// `Current worker (PID) exited with code 139 (Segmentation fault)`).
var workerExit = regexp.MustCompile(`worker \(?#?(\d+)\)? exited with code (\d+)[^\n]*`)

// workerExits are the master's log lines for workers that exited with a
// code other than 0 (a finished old worker exits 0).
func workerExits(hlog string) []string {
	b, _ := os.ReadFile(hlog)
	var exits []string
	for _, m := range workerExit.FindAllStringSubmatch(string(b), -1) {
		if m[2] != "0" {
			exits = append(exits, strings.TrimSpace(m[0]))
		}
	}
	return exits
}

var (
	errorPageTitle = regexp.MustCompile(`<h1>([^<]*)</h1>`)
	clientPort     = regexp.MustCompile(`(\d+\.\d+\.\d+\.\d+):\d+->`)
)

// failReason is a client's error without the request's URL or the
// client's port, so that errors of one kind count together.
func failReason(err string) string {
	if i := strings.Index(err, `": `); strings.HasPrefix(err, "Get ") && i > 0 {
		err = err[i+3:]
	}
	err = clientPort.ReplaceAllString(err, "$1->")
	if strings.HasPrefix(err, "status ") {
		// HAProxy's error page: its status line is enough.
		code, rest, _ := strings.Cut(err, ":")
		if h1 := errorPageTitle.FindStringSubmatch(rest); h1 != nil {
			return code + " (" + h1[1] + ")"
		}
		return code
	}
	return err
}

// httpLogLine matches HAProxy's httplog line of a client request: the
// status, then (after bytes and two cookie fields) the termination state
// and the connection counts ending in retries.
var httpLogLine = regexp.MustCompile(` (\d{3}|-1) \d+ \S+ \S+ (\S{4}) \d+/\d+/\d+/\d+/(\+?\d+) \d+/\d+ "GET /r `)

// abnormalRequests counts the client requests HAProxy logged (with option
// dontlog-normal: those that failed, timed out or were retried), by
// status, termination state and whether they were retried, and returns
// the lines of those not answered 200, or not matched.
func (l *lab) abnormalRequests() (map[string]int, []string) {
	b, _ := os.ReadFile(l.hlog)
	n := map[string]int{}
	var failed []string
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.Contains(line, " localnodes") {
			continue // not a traffic log line
		}
		m := httpLogLine.FindStringSubmatch(line)
		if m == nil {
			n["(other)"]++
			failed = append(failed, line)
			continue
		}
		retried := "not retried"
		if m[3] != "0" {
			retried = "retried " + strings.TrimPrefix(m[3], "+")
		}
		n[m[1]+" "+m[2]+" "+retried]++
		if m[1] != "200" {
			failed = append(failed, line)
		}
	}
	return n, failed
}

// countsString is counts as "key ×n, ...", most frequent first.
func countsString(counts map[string]int) string {
	if len(counts) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if counts[keys[i]] != counts[keys[j]] {
			return counts[keys[i]] > counts[keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s ×%d", k, counts[k])
	}
	return strings.Join(parts, ", ")
}

// assertStraysInMaint fails the test unless every server HAProxy runs
// that the installed file does not have is in maintenance: one a removal
// could not delete yet may stay, but never in rotation or draining.
func (l *lab) assertStraysInMaint() {
	l.t.Helper()
	live := l.mustServers()
	for _, s := range l.fileServers() {
		delete(live, s.Name)
	}
	var bad []string
	for name, s := range live {
		if !s.maint() {
			bad = append(bad, fmt.Sprintf("%s (op state %d, admin state %d)", name, s.op, s.admin))
		}
	}
	sort.Strings(bad)
	if len(bad) > 0 {
		l.t.Errorf("servers HAProxy runs that %s does not have, not in maintenance: %s", l.out, strings.Join(bad, ", "))
	}
}
