package e2e

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"
)

// TestLatency measures, on the real stack, how long a new backend takes to
// get traffic and a killed one to leave HAProxy, split by stage. It runs
// only with SERF_HB_LATENCY=1 (scripts/latency.sh): it takes minutes and
// asserts nothing beyond the story's own checks.
//
// serf-hb's reload command is wrapped to log the time it runs.
//
// Join, from the start of the backend's serf agent (its HTTP server is
// already listening):
//
//	serf       agent start -> serf-hb invoked (Serf's gossip and
//	           coalescing); invoked = the time of serf-hb's log line
//	           minus its took=
//	serf-hb    serf-hb's took= (its whole run)
//	to-reload  serf-hb invoked -> reload command started
//	reload     reload command started -> first response from the backend
//	           through the frontend (3 clients polling every 2 ms)
//	total      agent start -> first response
//
// kill -9 of the backend's agent and server:
//
//	detect   kill -> serf-hb invoked for member-failed
//	serf-hb  serf-hb's took=
//	reload   reload command started -> gone from show servers state
//	down     kill -> HAProxy's health check marks it down
//	removed  kill -> gone from HAProxy's show servers state
func TestLatency(t *testing.T) {
	if os.Getenv("SERF_HB_LATENCY") == "" {
		t.Skip("set SERF_HB_LATENCY=1 to measure (scripts/latency.sh)")
	}
	reps := 5
	if v, err := strconv.Atoi(os.Getenv("SERF_HB_LATENCY_REPS")); err == nil && v > 0 && v <= 30 {
		reps = v
	}
	for i, m := range []reloadMethod{masterWorker, labSF} {
		t.Run(m.name, func(t *testing.T) { latency(t, m, 150+50*i, reps) })
	}
}

type samples map[string][]time.Duration

func (s samples) add(k string, d time.Duration) { s[k] = append(s[k], d) }

func (s samples) report(t *testing.T, method string, keys ...string) {
	for _, k := range keys {
		v := append([]time.Duration(nil), s[k]...)
		if len(v) == 0 {
			continue
		}
		sort.Slice(v, func(i, j int) bool { return v[i] < v[j] })
		r := func(d time.Duration) string { return d.Round(time.Millisecond).String() }
		t.Logf("LATENCY %-13s %-16s median %8s  min %8s  max %8s  (n=%d)", method, k, r(v[len(v)/2]), r(v[0]), r(v[len(v)-1]), len(v))
	}
}

func latency(t *testing.T, m reloadMethod, base, reps int) {
	c := newClusterWith(t, m, base, true)
	c.step("an anchor backend joins", func() {
		c.startBackend("web0", backendOpts{})
		c.converge(c.want("web0"), 20*time.Second)
	})
	s := samples{}
	for i := 1; i <= reps; i++ {
		name := fmt.Sprintf("lat%d", i)
		c.step(name+" joins", func() {
			off := c.hbLogSize()
			stop := make(chan struct{})
			routed := make(chan time.Time, 1)
			var wg sync.WaitGroup
			for w := 0; w < 3; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					deadline := time.Now().Add(30 * time.Second)
					for time.Now().Before(deadline) {
						select {
						case <-stop:
							return
						default:
						}
						if got, code, err := c.frontendGet(); err == nil && code == 200 && got == name {
							select {
							case routed <- time.Now():
							default:
							}
							return
						}
						time.Sleep(2 * time.Millisecond)
					}
				}()
			}
			b := c.startBackend(name, backendOpts{})
			var at time.Time
			select {
			case at = <-routed:
			case <-time.After(30 * time.Second):
			}
			close(stop)
			wg.Wait()
			if at.IsZero() {
				c.fatalf("%s never answered through the frontend within 30s", name)
			}
			r := c.waitRun(off, 5*time.Second, "member-join added="+name, func(r hbRun) bool {
				return r["event"] == "member-join" && hasName(r["added"], name)
			})
			invoked := r.time().Add(-r.took())
			reloads := c.reloadsSince(invoked.Add(-time.Millisecond))
			if len(reloads) == 0 {
				c.fatalf("no reload logged in %s", c.reloadLog())
			}
			s.add("join:serf", invoked.Sub(b.agentStarted))
			s.add("join:serf-hb", r.took())
			s.add("join:to-reload", reloads[0].Sub(invoked))
			s.add("join:reload", at.Sub(reloads[0]))
			s.add("join:total", at.Sub(b.agentStarted))
			c.converge(c.want("web0", name), 10*time.Second)
		})
		c.step(name+" is killed", func() {
			off := c.hbLogSize()
			start := time.Now()
			c.kill9(name)
			var down, removed time.Time
			c.waitFor(name+" to leave HAProxy", 60*time.Second, func() error {
				st, err := c.haproxyServers()
				if err != nil {
					return err
				}
				if _, ok := st.routed[name]; !ok && down.IsZero() {
					down = time.Now()
				}
				if _, ok := st.configured[name]; ok {
					return fmt.Errorf("still configured")
				}
				removed = time.Now()
				return nil
			})
			r := c.waitRun(off, 5*time.Second, "member-failed removed="+name, func(r hbRun) bool {
				return r["event"] == "member-failed" && hasName(r["removed"], name)
			})
			invoked := r.time().Add(-r.took())
			reloads := c.reloadsSince(invoked.Add(-time.Millisecond))
			if len(reloads) == 0 {
				c.fatalf("no reload logged in %s", c.reloadLog())
			}
			s.add("kill:detect", invoked.Sub(start))
			s.add("kill:serf-hb", r.took())
			s.add("kill:reload", removed.Sub(reloads[0]))
			s.add("kill:down", down.Sub(start))
			s.add("kill:removed", removed.Sub(start))
			c.forget(name)
			c.converge(c.want("web0"), 10*time.Second)
		})
	}
	s.report(t, m.name, "join:serf", "join:serf-hb", "join:to-reload", "join:reload", "join:total",
		"kill:detect", "kill:serf-hb", "kill:reload", "kill:down", "kill:removed")
}
