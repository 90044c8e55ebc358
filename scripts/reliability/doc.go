// Package reliability proves, with repeatable measurements, that serf-hb
// loses and corrupts nothing under concurrency, crashes, faults and hostile
// input: the failures the lab's shell handlers showed (a truncated or empty
// config, lost servers, node names used as paths, reloads of bad configs).
//
// It holds only tests. They build the real binary once, then drive it as
// separate processes, the way serf agents run it, with small shell fakes
// for the reload command and real `haproxy -c` for validity. The default
// run (`go test ./scripts/reliability`) takes about two minutes on two
// cores; SERF_HB_HEAVY=1 runs the full trial counts of docs/reliability.md.
// `go test -v` prints the figures, and SERF_HB_REPORT=FILE also writes
// them to FILE as a markdown table.
package reliability
