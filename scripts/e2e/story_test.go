package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/serf-hb/serf-hb/scripts/internal/harness"
)

// TestStory walks the lab's story on the real stack with the default
// reload method, asserting after every step that the backends HAProxy
// routes to are exactly Serf's alive role=backend members.
func TestStory(t *testing.T) {
	// In parallel with TestReloadUnderLoad: this test mostly waits on
	// Serf, that one keeps the CPU busy; they share no address or port.
	t.Parallel()
	c := newCluster(t, defaultMethod, 1)
	serfAddr := func(name string) string { return fmt.Sprintf("%s:%d", c.backend(name).ip, serfPort) }

	c.step("no backend yet: the frontend answers 503", func() {
		c.converge(servers{}, 20*time.Second)
	})

	c.step("three backends join", func() {
		off := c.hbLogSize()
		for _, n := range []string{"web1", "web2", "web3"} {
			c.startBackend(n, backendOpts{})
		}
		c.converge(c.want("web1", "web2", "web3"), 20*time.Second)
		c.waitRun(off, 10*time.Second, "member-join reloaded", func(r hbRun) bool {
			return r["event"] == "member-join" && r["result"] == "reloaded"
		})
	})

	c.step("web1 leaves gracefully", func() {
		off := c.hbLogSize()
		c.leave("web1")
		c.converge(c.want("web2", "web3"), 20*time.Second)
		c.waitRun(off, 10*time.Second, "a run that removed web1", func(r hbRun) bool {
			return changed(r, "removed", "web1")
		})
		c.stopHTTP("web1")
		c.forget("web1")
	})

	c.step("web1 rejoins under the same name with a new address", func() {
		off := c.hbLogSize()
		c.startBackend("web1", backendOpts{})
		c.converge(c.want("web1", "web2", "web3"), 20*time.Second)
		c.waitRun(off, 10*time.Second, "a run that added web1", func(r hbRun) bool {
			return changed(r, "added", "web1")
		})
	})

	var web2Failed time.Time
	c.step("web2's agent and server are killed with kill -9: member-failed removes it", func() {
		off := c.hbLogSize()
		start := time.Now()
		c.kill9("web2")
		// Serf reports the failure after 5 to 25 s (lan profile: the
		// suspicion timeout shrinks as other members confirm it, and a
		// small cluster has few to confirm).
		c.converge(c.want("web1", "web3"), 40*time.Second)
		r := c.waitRun(off, 10*time.Second, "a run that removed web2", func(r hbRun) bool {
			return changed(r, "removed", "web2")
		})
		if st := c.memberStatus("web2"); st != "failed" {
			c.fatalf("serf reports web2 %q, want failed", st)
		}
		web2Failed = r.time().Add(-r.took())
		t.Logf("kill -9 -> serf-hb removed web2: %v", r.time().Sub(start).Round(time.Millisecond))
		c.forget("web2")
	})

	c.step("role change: web3 leaves the role and comes back", func() {
		off := c.hbLogSize()
		c.setRole("web3", "maintenance")
		c.converge(c.want("web1"), 20*time.Second)
		c.waitRun(off, 10*time.Second, "a run that removed web3", func(r hbRun) bool {
			return changed(r, "removed", "web3")
		})
		c.setRole("web3", "backend")
		c.converge(c.want("web1", "web3"), 20*time.Second)
	})

	c.step("a node whose name HAProxy cannot accept joins with a good one", func() {
		off := c.hbLogSize()
		c.startBackend("web4", backendOpts{})
		c.startBackend("bad&name", backendOpts{})
		c.converge(c.want("web1", "web3", "web4"), 20*time.Second)
		c.waitFor("serf to report bad&name alive", 10*time.Second, func() error {
			if st := c.memberStatus("bad&name"); st != "alive" {
				return fmt.Errorf("bad&name is %q", st)
			}
			return nil
		})
		c.waitRun(off, 10*time.Second, "WARN rejected bad&name", func(r hbRun) bool {
			return r["level"] == "WARN" && r["node"] == "bad&name"
		})
		if out, err := harness.Run(10*time.Second, nil, harness.Bin("haproxy"), "-c", "-f", c.cfgPath); err != nil {
			c.fatalf("the live config does not pass haproxy -c: %v %s", err, out)
		}
		c.leave("bad&name")
		c.stopHTTP("bad&name")
		c.forget("bad&name")
		c.converge(c.want("web1", "web3", "web4"), 20*time.Second)
	})

	c.step("the balancer's agent restarts: the registry persists, nothing is reloaded", func() {
		before := harness.HAProxyPIDs(c.cfgPath)
		w := c.watchHAProxy()
		_, oldPID := c.svstat("serf")
		off := c.hbLogSize()
		c.svc("-r", filepath.Join(c.scan, "serf"))
		c.waitFor("a new balancer agent", 20*time.Second, func() error {
			if up, pid := c.svstat("serf"); !up || pid == oldPID {
				return fmt.Errorf("serf service up=%v pid=%d (was %d)", up, pid, oldPID)
			}
			return nil
		})
		// The old agent ran serf-hb for its own leave before it exited;
		// only the new agent's runs count. Its first event comes after 1 s
		// of coalescing, well after this (log times are in milliseconds).
		restartedAt := time.Now().Truncate(time.Millisecond)
		c.waitRun(off, 20*time.Second, "a member-join run with result=unchanged", func(r hbRun) bool {
			return strings.HasPrefix(r["event"], "member-") && r["result"] == "unchanged" && !r.time().Before(restartedAt)
		})
		c.converge(c.want("web1", "web3", "web4"), 20*time.Second)
		seen, _ := w.finish()
		if !slices.Equal(seen, before) {
			c.fatalf("HAProxy processes changed across the agent's restart: %v -> %v", before, seen)
		}
	})

	c.step("a backend joins while the balancer's agent is down", func() {
		c.svc("-d", filepath.Join(c.scan, "serf"))
		c.waitFor("the balancer agent to stop", 15*time.Second, func() error {
			if up, _ := c.svstat("serf"); up {
				return fmt.Errorf("still up")
			}
			return nil
		})
		// With the balancer gone, web5 joins through web1; HAProxy
		// stays as it is meanwhile. The restarted agent rejoins through
		// any node of its snapshot and learns the members that node
		// knows: wait until every backend knows web5, or a rejoin
		// through one that has not heard of it yet leaves the balancer
		// without web5 until Serf's next push-pull (every 30 s).
		c.startBackend("web5", backendOpts{join: serfAddr("web1")})
		for _, peer := range []string{"web1", "web3", "web4"} {
			c.waitFor(peer+"'s agent to see web5 alive", 10*time.Second, func() error {
				ms, err := harness.Members(harness.Bin("serf"), "members", "-rpc-addr", c.serfRPC(peer), "-format", "json")
				for _, m := range ms {
					if m.Name == "web5" && m.Status == "alive" {
						return nil
					}
				}
				return fmt.Errorf("web5 not alive: %v", err)
			})
		}
		if cfg, err := c.configServers(); err != nil || !cfg.Equal(c.want("web1", "web3", "web4")) {
			c.fatalf("config changed while the balancer's agent was down: %v %v", cfg, err)
		}
		c.svc("-u", filepath.Join(c.scan, "serf"))
		c.converge(c.want("web1", "web3", "web4", "web5"), 30*time.Second)
	})

	c.step("a backend leaves while the balancer's agent is down: --reconcile drops it after the restart", func() {
		// Serf never tells the restarted agent about web4's leave (its
		// snapshot only lists members to rejoin): without --reconcile
		// web4 would stay in the registry and in HAProxy's config.
		c.svc("-d", filepath.Join(c.scan, "serf"))
		c.waitFor("the balancer agent to stop", 15*time.Second, func() error {
			if up, _ := c.svstat("serf"); up {
				return fmt.Errorf("still up")
			}
			return nil
		})
		c.leave("web4")
		c.stopHTTP("web4")
		c.forget("web4")
		off := c.hbLogSize()
		c.svc("-u", filepath.Join(c.scan, "serf"))
		c.converge(c.want("web1", "web3", "web5"), 30*time.Second)
		c.waitRun(off, 10*time.Second, "a run that removed web4", func(r hbRun) bool {
			return changed(r, "removed", "web4")
		})
	})

	c.step("a broken template, then a failing check: HAProxy keeps the last good config, no second HAProxy", func() {
		good, err := os.ReadFile(c.tmplPath)
		c.must(err)
		cfgBefore, err := os.ReadFile(c.cfgPath)
		c.must(err)
		serving := c.want("web1", "web3", "web5")
		before := harness.HAProxyPIDs(c.cfgPath)
		w := c.watchHAProxy()

		c.must(os.WriteFile(c.tmplPath, append(slices.Clone(good), "{% for x in nodes %}\n"...), 0o644))
		off := c.hbLogSize()
		c.setRole("web5", "maintenance")
		r := c.waitRun(off, 15*time.Second, "member-update with a template error", func(r hbRun) bool {
			return r["event"] == "member-update" && r["result"] == "failed"
		})
		if !strings.Contains(r["err"], "template") {
			c.fatalf("serf-hb's error does not name the template: %q", r["err"])
		}
		c.assertServing(serving, cfgBefore)

		// A template that renders, but into a file HAProxy refuses.
		c.must(os.WriteFile(c.tmplPath, append(slices.Clone(good), "    no-such-keyword-e2e\n"...), 0o644))
		off = c.hbLogSize()
		c.setRole("web3", "maintenance")
		c.waitRun(off, 15*time.Second, "member-update with result=check-failed", func(r hbRun) bool {
			return r["event"] == "member-update" && r["result"] == "check-failed"
		})
		c.assertServing(serving, cfgBefore)
		reg, err := harness.ReadRegistry(c.nodesDir)
		c.must(err)
		for _, n := range []string{"web3", "web5"} {
			if _, ok := reg.Nodes[n]; ok {
				c.fatalf("the registry still holds %s after it left the role", n)
			}
		}
		seen, max := w.finish()
		if !slices.Equal(seen, before) || max != len(before) {
			c.fatalf("HAProxy processes changed while the new config was refused: %v -> %v (at most %d at once)", before, seen, max)
		}

		// Fixed template: the operator re-renders by hand.
		c.must(os.WriteFile(c.tmplPath, good, 0o644))
		if out, err := harness.Run(30*time.Second, nil, harness.Bin("serf-hb"), "--config", c.hbConfig, "render"); err != nil {
			c.fatalf("serf-hb render: %v %s", err, out)
		}
		c.converge(c.want("web1"), 20*time.Second)
		c.setRole("web3", "backend")
		c.setRole("web5", "backend")
		c.converge(c.want("web1", "web3", "web5"), 20*time.Second)
	})

	c.step("web2 rejoins under the same name with a new address after its failure", func() {
		// Serf's memberlist refuses a new address for a member it holds
		// as dead ("Conflicting address for web2"), serf force-leave
		// included, until it forgets the dead member: GossipToTheDeadTime
		// is 30 s in the lan profile. The steps above took most of that.
		forgotten := web2Failed.Add(31 * time.Second)
		if d := time.Until(forgotten); d > 0 {
			t.Logf("waiting %v for Serf to forget the failed web2", d.Round(time.Millisecond))
			time.Sleep(d)
		}
		off := c.hbLogSize()
		c.startBackend("web2", backendOpts{})
		c.converge(c.want("web1", "web2", "web3", "web5"), 30*time.Second)
		c.waitRun(off, 10*time.Second, "a run that added web2", func(r hbRun) bool {
			return changed(r, "added", "web2")
		})
	})

	c.step("a registry that drifted is healed by `serf event serf-hb-sync`", func() {
		// Someone deletes a node's file and re-renders: web1 drops out.
		c.must(os.Remove(filepath.Join(c.nodesDir, "web1")))
		if out, err := harness.Run(30*time.Second, nil, harness.Bin("serf-hb"), "--config", c.hbConfig, "render"); err != nil {
			c.fatalf("serf-hb render: %v %s", err, out)
		}
		if cfg, _ := c.configServers(); cfg["web1"] != "" {
			c.fatalf("web1 still in the config after its registry file was removed")
		}
		off := c.hbLogSize()
		if out, err := harness.Run(10*time.Second, nil, harness.Bin("serf"), "event", "-rpc-addr", c.serfRPC("web3"), "serf-hb-sync"); err != nil {
			c.fatalf("%v %s", err, out)
		}
		c.converge(c.want("web1", "web2", "web3", "web5"), 20*time.Second)
		c.waitRun(off, 10*time.Second, "a run that added web1", func(r hbRun) bool {
			return r["event"] == "user" && changed(r, "added", "web1")
		})
	})
}

// changed reports whether a serf-hb run changed name under key ("added",
// "removed"), by its own lines or by --reconcile: with --reconcile the
// first event that follows a change may apply it (a leaving node shows up
// in a member-update before its member-leave).
func changed(r hbRun, key, name string) bool {
	return hasName(r[key], name) || hasName(r["reconcile_"+key], name)
}

// assertServing checks that the installed config is still cfg and that
// HAProxy and the frontend still serve want, whatever Serf says.
func (c *cluster) assertServing(want servers, cfg []byte) {
	c.t.Helper()
	now, err := os.ReadFile(c.cfgPath)
	c.must(err)
	if !bytes.Equal(now, cfg) {
		c.fatalf("the installed config changed:\n%s", now)
	}
	for i := 0; i < 3; i++ {
		o := c.observe(want)
		o.serf = want // Serf has moved on; HAProxy must not have
		if !o.agrees(want) {
			c.fatalf("HAProxy does not serve the last good config %v:\n%v", want, o)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
