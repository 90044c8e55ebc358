// Package e2e proves serf-hb in the deployment it is made for, with real
// components only, on one machine, on loopback: s6-svscan supervising
// HAProxy and the balancer's serf agent (serf-hb as its event handler),
// and backends that are each a tiny HTTP server plus a serf agent.
//
// Every step asserts that five views agree: what the test did (its model),
// Serf's alive role=backend members, the server lines of the rendered
// configuration, HAProxy's own view (show servers state on its stats
// socket) and the backends that answer through the frontend.
//
// Addresses: 127.0.1.0/24 only (other tests use other ranges at the same
// time). Every process is stopped by PID in t.Cleanup, every wait is
// bounded, and a failing step prints the logs it produced. The serf binary
// is $SERF_BIN, or serf from $PATH; HAProxy is $HAPROXY_BIN, or haproxy from
// $PATH. See docs/e2e.md and docs/testing.md.
package e2e

import (
	"os"
	"testing"

	"github.com/serf-hb/serf-hb/scripts/internal/harness"
)

func TestMain(m *testing.M) {
	os.Exit(harness.Main(m, harness.Suite{
		Name:  "e2e",
		Needs: []string{"serf", "haproxy", "s6-svscan", "s6-svscanctl", "s6-svc", "s6-svstat", "s6-svok", "env"},
		Build: []string{harness.Module + "/scripts/e2e/backend"},
	}))
}
