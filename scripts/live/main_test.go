// Package live proves serf-hb's live HAProxy updates (--haproxy-socket)
// with real components only: HAProxy ($HAPROXY_BIN, or haproxy from $PATH:
// Debian's 2.6, or 3.0) in master-worker mode (haproxy -W -db -S MASTER -f
// CFG) under a real s6-svscan and s6-supervise, real HTTP
// backends (net/http servers in the test), and serf-hb built once and run
// as a process exactly as a serf agent runs it: SERF_EVENT, SERF_SELF_NAME,
// SERF_SELF_ROLE in its environment, one member line per member on stdin.
//
// Every test asserts what a user would see: which backend answers through
// the frontend, whether a request failed, whether HAProxy reloaded (the
// master's show proc), what HAProxy runs (show servers state) against what
// the installed file says, and serf-hb's summary line (result=, live=).
//
// Addresses: 127.X.25.0/24 only (lab_test.go), and unix sockets in short temporary
// directories. Every process is stopped by PID in t.Cleanup and every wait
// is bounded. Speed is measured by benchmarks, never asserted by tests.
package live

import (
	"os"
	"testing"

	"github.com/serf-hb/serf-hb/scripts/internal/harness"
)

func TestMain(m *testing.M) {
	os.Exit(harness.Main(m, harness.Suite{
		Name:  "live",
		Needs: []string{"haproxy", "s6-svscan", "s6-svscanctl", "s6-supervise", "s6-svc", "env", "setsid"},
		// serf-hb as release builds ship it.
		Static: true,
	}))
}
