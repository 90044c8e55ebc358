package e2e

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/serf-hb/serf-hb/scripts/internal/harness"
)

// Load generator settings: loopback only, bounded in time.
// SERF_HB_LOAD_WORKERS (1 to 256) overrides the number of workers, for
// measurements (docs/e2e.md).
const (
	loadWorkers = 16
	loadPause   = 2 * time.Millisecond // per worker, between requests
	loadMaxTime = 4 * time.Minute
	loadChanges = 20
)

// TestReloadUnderLoad makes 20 membership changes while clients hit the
// frontend with a new connection per request, once per reload method, and
// counts failed requests. The default method must fail none.
func TestReloadUnderLoad(t *testing.T) {
	t.Parallel()
	for i, m := range []reloadMethod{masterWorker, labSF} {
		t.Run(m.name, func(t *testing.T) { reloadUnderLoad(t, m, 50+50*i) })
	}
}

func reloadUnderLoad(t *testing.T, m reloadMethod, base int) {
	c := newCluster(t, m, base)
	names := []string{"web1", "web2", "web3", "web4"}
	running := map[string]bool{}
	want := func() servers {
		var list []string
		for _, n := range names {
			if running[n] {
				list = append(list, n)
			}
		}
		return c.want(list...)
	}
	c.step("four backends join", func() {
		for _, n := range names {
			c.startBackend(n, backendOpts{})
			running[n] = true
		}
		c.converge(want(), 20*time.Second)
	})

	strict := m == defaultMethod
	var (
		l          *load
		converged  []time.Duration
		notConverg []string
		reloads    int
	)
	c.step(fmt.Sprintf("%d membership changes under load", loadChanges), func() {
		off := c.hbLogSize()
		workers := loadWorkers
		if n, err := strconv.Atoi(os.Getenv("SERF_HB_LOAD_WORKERS")); err == nil && n > 0 && n <= 256 {
			workers = n
		}
		l = startLoad("http://"+c.frontend()+"/", workers)
		defer l.stop()
		// Let the load settle before the first change.
		c.waitFor("the load's first 100 requests", 10*time.Second, func() error {
			if n := l.total.Load(); n < 100 {
				return fmt.Errorf("%d sent", n)
			}
			return nil
		})
		for k := 0; k < loadChanges; k++ {
			cycle := k / 4
			var desc string
			switch k % 4 {
			case 0: // out of the role
				n := names[cycle%4]
				desc = n + " role=maintenance"
				c.setRole(n, "maintenance")
				running[n] = false
			case 1: // back in
				n := names[cycle%4]
				desc = n + " role=backend"
				c.setRole(n, "backend")
				running[n] = true
			case 2: // graceful leave; its server stops once it is out
				n := names[(cycle+2)%4]
				desc = n + " leaves"
				c.leave(n)
				running[n] = false
			case 3: // rejoins on a new address
				n := names[(cycle+2)%4]
				desc = n + " rejoins"
				c.forget(n)
				c.startBackend(n, backendOpts{})
				running[n] = true
			}
			// Generous for a loaded CI machine: a change takes ~1.5 s.
			d, o, ok := c.tryConverge(want(), 20*time.Second)
			switch {
			case ok:
				converged = append(converged, d)
			case strict:
				c.fatalf("change %d (%s): views did not converge to %v within 20s:\n%v", k+1, desc, want(), o)
			default:
				notConverg = append(notConverg, fmt.Sprintf("change %d (%s): %v", k+1, desc, o))
				t.Logf("change %d (%s) not routed within 20s:\n%v", k+1, desc, o)
			}
			if k%4 == 2 {
				c.stopHTTP(names[(cycle+2)%4])
			}
		}
		l.stop()
		for _, r := range c.hbRuns(off) {
			if r["result"] == "reloaded" {
				reloads++
			}
		}
	})

	total, failed, kinds := l.result()
	sort.Slice(converged, func(i, j int) bool { return converged[i] < converged[j] })
	var med time.Duration
	if len(converged) > 0 {
		med = converged[len(converged)/2]
	}
	t.Logf("RESULT %s: %d/%d requests failed (%.3f%%) during %d changes, %d reloads, %d workers, %.0f req/s; change routed in median %v; not routed within 20s: %d; failures: %v",
		m.name, failed, total, 100*float64(failed)/float64(max(total, 1)), loadChanges, reloads, l.workers,
		float64(total)/l.elapsed().Seconds(), med.Round(time.Millisecond), len(notConverg), kinds)
	if total < 1000 {
		t.Errorf("only %d requests were made: the load did not run", total)
	}
	if strict && failed > 0 {
		t.Errorf("%s (the default) failed %d of %d requests during reloads: %v\n%s", m.name, failed, total, kinds, c.stepLogs())
	}
	if strict && reloads < loadChanges {
		t.Errorf("%d changes made only %d reloads", loadChanges, reloads)
	}
}

// load is a bounded HTTP load generator (harness.Load) counting failures
// by kind.
type load struct {
	*harness.Load
	workers      int
	total, fails atomic.Int64
	mu           sync.Mutex
	kinds        map[string]int
	start        time.Time
	end          atomic.Int64 // unix nanos when stopped
	once         sync.Once
}

func startLoad(url string, workers int) *load {
	l := &load{workers: workers, kinds: map[string]int{}, start: time.Now()}
	l.Load = harness.StartLoad(harness.LoadSpec{URL: url, Workers: workers, Pause: loadPause,
		Timeout: 5 * time.Second, MaxTime: loadMaxTime, Record: l.record})
	return l
}

// record counts a request, and a failure by its kind ("status 503", not
// the body that follows).
func (l *load) record(_ time.Time, kind string) {
	l.total.Add(1)
	if kind == "" {
		return
	}
	if f := strings.Fields(kind); f[0] == "status" && len(f) > 2 {
		kind = f[0] + " " + f[1]
	}
	l.fails.Add(1)
	l.mu.Lock()
	l.kinds[kind]++
	l.mu.Unlock()
}

func (l *load) stop() {
	l.once.Do(func() {
		l.Stop()
		l.end.Store(time.Now().UnixNano())
	})
}

func (l *load) elapsed() time.Duration {
	if e := l.end.Load(); e != 0 {
		return time.Unix(0, e).Sub(l.start)
	}
	return time.Since(l.start)
}

func (l *load) result() (total, failed int64, kinds map[string]int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := make(map[string]int, len(l.kinds))
	for n, v := range l.kinds {
		k[n] = v
	}
	return l.total.Load(), l.fails.Load(), k
}
