// Package partition cuts a real network in two and checks what serf-hb
// does to a load balancer on the wrong side of it (issue "Never make
// things worse", --min-nodes).
//
// The balancer lives in a network namespace of its own: s6-svscan
// supervising HAProxy (master-worker mode) and a serf agent whose event
// handler is serf-hb. Three backends, each a serf agent and an HTTP
// server, live in a second namespace. One veth pair joins the two on
// 198.18.24.0/24 (the benchmark range); neither namespace has any other
// link or route, so no packet can leave the machine. The test then drops
// only Serf's gossip, TCP and UDP port 7946, on both ends of the link with
// nftables: HAProxy still reaches the backends' HTTP port while Serf
// declares every backend failed. Then it lifts the cut and waits for
// everything to agree again.
//
// It needs root, iproute2 and nftables besides serf, haproxy and s6, and
// fails (never skips) without them. It has tests only; see
// docs/reliability.md, "A real partition".
package partition
