// Package synctest proves `serf-hb sync`, the serf-hb-sync user event and
// --reconcile against real `serf agent` processes (Debian's serf package)
// on loopback addresses 127.0.2.0/24 only.
//
// It holds only tests. They build serf-hb into a temp dir, start a balancer
// agent that runs it as its event handler (with an rpc_auth key, so the
// auth path is always exercised) and three backend agents, then break the
// registry the ways Serf's edge-only delivery does and check that sync
// heals it: a backend that leaves while the balancer's agent is down, a
// node in the registry that is no member, a member missing from the
// registry; and that an unreachable agent and --dry-run touch nothing.
// The subtests run in order on one cluster, each starting from the state
// the previous one left, so run the test as a whole: `go test -v
// ./scripts/synctest` (about 20 s) also prints the timings.
package synctest
