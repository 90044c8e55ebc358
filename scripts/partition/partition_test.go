package partition

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/serf-hb/serf-hb/scripts/internal/harness"
)

// TestPartition cuts Serf's gossip between a balancer and its three
// backends while HAProxy still reaches them, then restores it. Serf on
// the balancer declares every backend failed, one after another, 2-3 s
// apart: serf-hb's runs see 3 -> 2 -> 1 -> 0 nodes (or a few at once).
//
//   - with --min-nodes, a run that would publish fewer than N nodes while N
//     or more are published is guarded: the registry follows Serf, the
//     config and HAProxy keep the last published servers, serf-hb logs
//     result=guarded and exits 7 (the agent logs "Error invoking script"),
//     and no request through the frontend fails;
//   - render --force publishes what the registry holds anyway;
//   - without --min-nodes every failure is published, down to no server
//     (503);
//   - once the link is back, the members come back alive and every view
//     converges on the three backends again.
func TestPartition(t *testing.T) {
	cases := []struct {
		name     string
		minNodes int  // 0: no --min-nodes
		force    bool // an operator runs serf-hb render --force during the partition
	}{
		// The first failure (3 -> 2) is published when it comes alone; the
		// guard holds from the next one.
		{name: "min-nodes=2", minNodes: 2},
		// Every failure is guarded: HAProxy keeps all three.
		{name: "min-nodes=3 then render --force", minNodes: 3, force: true},
		{name: "no guard"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			c := newCluster(t, tc.minNodes)
			c.startBackends(3)
			all := c.want()
			took := c.converge(all, 30*time.Second)
			t.Logf("three backends joined and serve in %v", took.Round(time.Millisecond))
			before, err := os.ReadFile(c.cfgPath)
			c.must(err)

			ld := c.startLoad()
			c.waitSent(ld, 50) // requests before the cut too
			hbOff, serfOff := fileSize(c.hbLog), fileSize(c.serfLog)
			cutAt := time.Now()
			c.must(c.net.cutGossip())

			took = c.waitFor("Serf to mark every backend failed", 90*time.Second, func() error {
				st, err := c.statuses()
				if err != nil {
					return err
				}
				for _, b := range c.backends {
					if st[b.name] != "failed" {
						return fmt.Errorf("statuses %v", st)
					}
				}
				return nil
			})
			t.Logf("Serf marked all three failed %v after the cut", took.Round(time.Millisecond))
			// The registry follows Serf in every case, guarded or not.
			c.waitFor("the registry to drop every backend", 30*time.Second, func() error {
				reg, err := c.registry()
				if err == nil && len(reg) > 0 {
					err = fmt.Errorf("registry %v", reg)
				}
				return err
			})

			var forceAt time.Time
			if tc.minNodes > 0 {
				kept := c.checkGuarded(tc.minNodes, hbOff, serfOff, before)
				t.Logf("guarded: config and HAProxy keep %v", kept)
				if tc.force {
					forceAt = time.Now()
					out, err := harness.Run(60*time.Second, nil, c.net.exec(c.net.lb, harness.Bin("serf-hb"), "--config", c.hbConfig, "render", "--force")...)
					if err != nil {
						c.fatalf("serf-hb render --force: %v %s", err, out)
					}
					n := ld.n503.Load()
					c.converge(servers{}, 30*time.Second)
					c.wait503(ld, n)
					t.Logf("render --force published the empty registry: 503")
				}
			} else {
				c.converge(servers{}, 30*time.Second)
				c.wait503(ld, 0)
				if errs := c.scriptErrors(serfOff); len(errs) > 0 {
					c.fatalf("serf-hb failed during the partition without a guard:\n%s", strings.Join(errs, "\n"))
				}
			}

			restoreAt := time.Now()
			c.must(c.net.restoreGossip())
			took = c.converge(all, 60*time.Second)
			t.Logf("every view agrees on the three backends %v after the link came back", took.Round(time.Millisecond))
			c.checkLastRunPublished(hbOff)
			if tc.minNodes > 0 {
				c.checkExitSevens(hbOff, serfOff)
			}

			rs := ld.finish()
			end := time.Now()
			whole := count(rs, time.Time{}, end)
			t.Logf("load: %v (before the cut: %v; partition: %v; after: %v)", whole,
				count(rs, time.Time{}, cutAt), count(rs, cutAt, restoreAt), count(rs, restoreAt, end))
			if whole.failed > 0 {
				t.Errorf("requests failed without an HTTP answer or with a status other than 200/503: %v", whole)
			}
			switch {
			case tc.force:
				if g := count(rs, time.Time{}, forceAt); g.n503 > 0 {
					t.Errorf("requests got 503 while the guard held: %v", g)
				}
				if f := count(rs, forceAt, restoreAt); f.n503 == 0 {
					t.Errorf("no request got a 503 after render --force published no server: %v", f)
				}
			case tc.minNodes > 0:
				if whole.n503 > 0 {
					t.Errorf("requests got 503 with the guard: %v", whole)
				}
			default:
				if p := count(rs, cutAt, restoreAt); p.n503 == 0 {
					t.Errorf("no request got a 503 while no server was published: %v", p)
				}
			}
			t.Logf("whole run %v", time.Since(start).Round(time.Millisecond))
		})
	}
}

// checkGuarded checks the balancer during the partition, with every
// backend failed and dropped from the registry, under --min-nodes
// minNodes: a run was guarded; the config kept at least minNodes of the
// backends it had (all of them, byte for byte, when no failure got
// through); HAProxy routes to exactly those, and they answer. It returns
// the servers kept.
func (c *cluster) checkGuarded(minNodes int, hbOff, serfOff int64, before []byte) servers {
	c.t.Helper()
	var guarded map[string]string
	c.waitFor("a result=guarded line from serf-hb", 30*time.Second, func() error {
		for _, r := range c.hbRuns(hbOff) {
			if r["result"] == "guarded" {
				guarded = r
				return nil
			}
		}
		return fmt.Errorf("no result=guarded line in %s", c.hbLog)
	})
	c.t.Logf("serf-hb: %v", guarded)
	// Every guarded run names the counts: what it would have published,
	// what stays published, the minimum.
	for _, r := range c.hbRuns(hbOff) {
		if r["result"] != "guarded" {
			continue
		}
		nodes, err1 := strconv.Atoi(r["nodes"])
		published, err2 := strconv.Atoi(r["published"])
		if err1 != nil || err2 != nil || r["min_nodes"] != strconv.Itoa(minNodes) ||
			nodes >= minNodes || published < minNodes || !strings.HasPrefix(r["err"], "guarded: ") {
			c.fatalf("guarded run without consistent counts (nodes < min_nodes=%d <= published): %v", minNodes, r)
		}
	}
	kept, err := c.configServers()
	c.must(err)
	all := c.want()
	if !kept.SubsetOf(all) || len(kept) < minNodes {
		c.fatalf("with --min-nodes %d the config holds %v; want at least %d of %v", minNodes, kept, minNodes, all)
	}
	if len(kept) == len(all) {
		now, err := os.ReadFile(c.cfgPath)
		c.must(err)
		if string(now) != string(before) {
			c.fatalf("the config kept every server but changed:\n%s\nwas:\n%s", now, before)
		}
	}
	c.waitFor("HAProxy to route to the kept servers", 10*time.Second, func() error {
		st, err := c.haproxyServers()
		if err != nil {
			return err
		}
		if !st.configured.Equal(kept) || !st.routed.Equal(kept) {
			return fmt.Errorf("HAProxy has %v, routes to %v; config %v", st.configured, st.routed, kept)
		}
		if v := c.probe(3*len(kept) + 3); !v.answeredBy(kept) {
			return fmt.Errorf("frontend answered by %v (503: %d, failed: %d %s)", v.Seen, v.N503, v.Bad, v.LastErr)
		}
		return nil
	})
	c.waitFor("the agent to log serf-hb's exit status 7", 10*time.Second, func() error {
		errs := c.scriptErrors(serfOff)
		if len(errs) == 0 {
			return fmt.Errorf("no \"Error invoking script\" line in %s", c.serfLog)
		}
		return nil
	})
	return kept
}

// checkExitSevens checks that every handler failure the agent logged since
// serfOff is an exit status 7, one per result=guarded line of serf-hb.
func (c *cluster) checkExitSevens(hbOff, serfOff int64) {
	c.t.Helper()
	c.waitFor("one exit status 7 per guarded run", 10*time.Second, func() error {
		guarded := 0
		for _, r := range c.hbRuns(hbOff) {
			if r["result"] == "guarded" {
				guarded++
			}
		}
		errs := c.scriptErrors(serfOff)
		for _, e := range errs {
			if !strings.HasSuffix(e, "exit status 7") {
				return fmt.Errorf("handler failed otherwise: %s", e)
			}
		}
		if len(errs) != guarded {
			return fmt.Errorf("%d guarded runs, %d handler failures:\n%s", guarded, len(errs), strings.Join(errs, "\n"))
		}
		return nil
	})
}

// checkLastRunPublished checks that serf-hb's last run since hbOff
// succeeded and published: a later run brings the count back.
func (c *cluster) checkLastRunPublished(hbOff int64) {
	c.t.Helper()
	// The run that installed the config logs its line after the reload.
	c.waitFor("serf-hb's last run to have published", 10*time.Second, func() error {
		runs := c.hbRuns(hbOff)
		if len(runs) == 0 {
			return fmt.Errorf("no serf-hb run logged")
		}
		if last := runs[len(runs)-1]; last["result"] == "guarded" || last["err"] != "" {
			return fmt.Errorf("serf-hb's last run did not publish: %v", last)
		}
		return nil
	})
}
