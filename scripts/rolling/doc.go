// Package rolling is the real proof that serf-hb never becomes the
// bottleneck of a cluster (issue 17): a rolling deploy of 60 real backends
// under steady load, with real components only, on one machine, on
// loopback.
//
// The balancer is HAProxy 2.6 in master-worker mode (haproxy -W -db -S
// MASTER) and a serf agent whose event handler is serf-hb with the live
// path on (--check 'haproxy -c -f {}', --haproxy-socket,
// --haproxy-master-socket, a reload command). Each backend is a serf agent
// and an HTTP server process (scripts/e2e/backend) on a loopback address
// of its own. A client sends requests through HAProxy's frontend the whole
// time, a new connection per request, and keeps every failure with its
// reason.
//
// Phases: every backend joins; a rolling deploy (one backend after
// another: its agent leaves gracefully, its app keeps serving until
// HAProxy has taken it out of rotation, then stops and starts again, then
// its agent rejoins); then three backends are killed (SIGKILL, agent and
// app). It asserts 0 failed requests during the rolling deploy, 0 HAProxy
// reloads, no handler run over 1 s (Serf's own "slow, execution
// exceeding" warnings in the balancer agent's log), and at the end that
// HAProxy's live servers, the installed file, the registry and Serf's
// alive members are the same; it prints the figures (requests, handler
// runs and their times, the leave-to-removal delay an app must keep
// serving for, time to converge).
//
// Addresses: 127.0.6.0/24 only. The haproxy binary is $HAPROXY_BIN, or
// haproxy from $PATH; the serf binary $SERF_BIN, or serf from $PATH. See
// docs/testing.md.
package rolling
