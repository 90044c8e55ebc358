// Package synctest proves `serf-hb sync`, the serf-hb-sync user event and
// --reconcile against real `serf agent` processes on loopback addresses
// 127.0.2.0/24 only: Debian's serf package by default, any other serf
// binary with SERF_BIN (scripts/test.sh runs it again with upstream
// v0.10.2).
//
// It holds only tests. TestMain (scripts/internal/harness) builds serf-hb
// once into a temp dir; the test starts a balancer
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
