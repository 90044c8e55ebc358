package partition

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/serf-hb/serf-hb/scripts/internal/harness"
)

// Addresses: 198.18.24.0/24 (the benchmark range), and only inside the
// test's own namespaces, which have no route anywhere else.
const (
	subnet     = "198.18.24.0/24"
	lbIP       = "198.18.24.1"
	gossipPort = 7946 // Serf's default, used by every agent here
	httpPort   = 8080
	lbDev      = "lb0" // the veth end in the balancer's namespace
	beDev      = "be0" // the veth end in the backends' namespace
)

func backendIP(i int) string { return "198.18.24." + strconv.Itoa(11+i) }

var netSeq atomic.Int32

// network is two namespaces joined by one veth pair: lb for the
// balancer, be for the backends.
type network struct {
	t      *testing.T
	lb, be string
}

// newNetwork creates the namespaces and the link, and registers their
// removal. Call it before starting anything in them: t.Cleanup runs in
// reverse order, so the processes are stopped before the namespaces go.
func newNetwork(t *testing.T) *network {
	t.Helper()
	id := netSeq.Add(1)
	n := &network{
		t:  t,
		lb: fmt.Sprintf("hbpart-%d-%d-lb", os.Getpid(), id),
		be: fmt.Sprintf("hbpart-%d-%d-be", os.Getpid(), id),
	}
	for _, ns := range []string{n.lb, n.be} {
		if out, err := harness.Run(10*time.Second, nil, "ip", "netns", "add", ns); err != nil {
			t.Fatalf("create namespace: %v %s", err, out)
		}
		t.Cleanup(func() { n.remove(ns) })
	}
	// Both ends are created directly inside their namespaces: the host's
	// namespace never has them, so parallel tests cannot collide.
	steps := [][]string{
		{"link", "add", lbDev, "netns", n.lb, "type", "veth", "peer", "name", beDev, "netns", n.be},
		{"-n", n.lb, "link", "set", "lo", "up"},
		{"-n", n.be, "link", "set", "lo", "up"},
		{"-n", n.lb, "addr", "add", lbIP + "/24", "dev", lbDev},
	}
	for i := range 3 {
		steps = append(steps, []string{"-n", n.be, "addr", "add", backendIP(i) + "/24", "dev", beDev})
	}
	steps = append(steps,
		[]string{"-n", n.lb, "link", "set", lbDev, "up"},
		[]string{"-n", n.be, "link", "set", beDev, "up"})
	for _, s := range steps {
		if out, err := harness.Run(10*time.Second, nil, append([]string{"ip"}, s...)...); err != nil {
			t.Fatalf("set up the link: %v %s", err, out)
		}
	}
	// The only routes must be the link's own subnet (and loopback): no
	// packet of this test may leave the machine.
	for _, ns := range []string{n.lb, n.be} {
		out, err := harness.Run(10*time.Second, nil, "ip", "-n", ns, "-4", "route", "show", "table", "all")
		if err != nil {
			t.Fatalf("list routes: %v", err)
		}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			f := strings.Fields(line)
			if len(f) == 0 {
				continue
			}
			dst := f[0]
			if f[0] == "local" || f[0] == "broadcast" {
				dst = f[1]
			}
			if !strings.HasPrefix(dst, "198.18.24.") && !strings.HasPrefix(dst, "127.") {
				t.Fatalf("namespace %s has a route outside %s: %s", ns, subnet, line)
			}
		}
	}
	return n
}

// exec returns the argv that runs argv inside namespace ns.
func (n *network) exec(ns string, argv ...string) []string {
	return append([]string{"ip", "netns", "exec", ns}, argv...)
}

// gossipCut drops Serf's gossip, TCP and UDP to or from port 7946, where
// packets enter each end of the link (the netdev ingress hook), so that a
// packet is lost on the wire as in a real partition. A drop on the output
// path would not do: sendto fails with EPERM there, memberlist logs
// "Failed to send ping" and never suspects the node (measured: members
// stayed alive for 40 s).
const gossipCut = `table netdev hbpart {
	chain gossip {
		type filter hook ingress device %q priority 0; policy accept;
		meta l4proto { tcp, udp } th dport %d drop
		meta l4proto { tcp, udp } th sport %d drop
	}
}
`

// cutGossip partitions Serf's gossip between the two namespaces; every
// other traffic (HAProxy's requests and health checks) still flows.
func (n *network) cutGossip() error {
	for _, e := range []struct{ ns, dev string }{{n.lb, lbDev}, {n.be, beDev}} {
		rules := fmt.Sprintf(gossipCut, e.dev, gossipPort, gossipPort)
		if out, err := harness.RunStdin(10*time.Second, rules, n.exec(e.ns, "nft", "-f", "-")...); err != nil {
			return fmt.Errorf("cut gossip in %s: %v %s", e.ns, err, out)
		}
	}
	return nil
}

// restoreGossip lifts the cut.
func (n *network) restoreGossip() error {
	for _, ns := range []string{n.lb, n.be} {
		if out, err := harness.Run(10*time.Second, nil, n.exec(ns, "nft", "delete", "table", "netdev", "hbpart")...); err != nil {
			return fmt.Errorf("restore gossip in %s: %v %s", ns, err, out)
		}
	}
	return nil
}

// remove kills whatever still runs in namespace ns (only this test's
// processes can be there) and deletes it. The link and the nftables
// rules go with it.
func (n *network) remove(ns string) {
	harness.KillAll(n.t, "leftover processes in namespace "+ns, func() []int {
		out, _ := harness.Run(5*time.Second, nil, "ip", "netns", "pids", ns)
		var pids []int
		for _, f := range strings.Fields(out) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
		return pids
	})
	if out, err := harness.Run(10*time.Second, nil, "ip", "netns", "del", ns); err != nil {
		n.t.Errorf("delete namespace %s: %v %s", ns, err, out)
	}
}
