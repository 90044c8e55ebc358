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
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/serf-hb/serf-hb/internal/haproxytest"
)

// serfHB is the serf-hb binary built once for the whole package;
// haproxyBin is the HAProxy the tests run ($HAPROXY_BIN, or haproxy from
// $PATH).
var serfHB, haproxyBin string

// required are the programs the tests drive, besides HAProxy.
var required = []string{"s6-svscan", "s6-svscanctl", "s6-supervise", "s6-svc", "env"}

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	var missing []string
	for _, p := range required {
		if _, err := exec.LookPath(p); err != nil {
			missing = append(missing, p)
		}
	}
	if _, err := haproxytest.Path(); err != nil {
		if os.Getenv(haproxytest.Env) != "" {
			fmt.Fprintf(os.Stderr, "live: %v\n", err)
			return 1
		}
		missing = append(missing, "haproxy")
	}
	if len(missing) > 0 {
		// Never skip: a machine without them must not pass silently.
		fmt.Fprintf(os.Stderr, "live: %s not found in $PATH; hint: apt-get install -y haproxy s6\n", strings.Join(missing, ", "))
		return 1
	}
	dir, err := os.MkdirTemp("", "serf-hb-live-bin-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "live: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if haproxyBin, err = haproxytest.Setup("live", filepath.Join(dir, "haproxy-path")); err != nil {
		fmt.Fprintf(os.Stderr, "live: %v\n", err)
		return 1
	}
	serfHB = filepath.Join(dir, "serf-hb")
	if err := goBuild(serfHB, "github.com/serf-hb/serf-hb"); err != nil {
		fmt.Fprintf(os.Stderr, "live: %v\n", err)
		return 1
	}
	return m.Run()
}

// goBuild builds pkg into out with the go command that runs this test, as
// a static binary (what release builds ship).
func goBuild(out, pkg string) error {
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(gobin); err != nil {
		if gobin, err = exec.LookPath("go"); err != nil {
			return fmt.Errorf("build %s: go command not found", pkg)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, gobin, "build", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build %s: %v: %s", pkg, err, b)
	}
	return nil
}
