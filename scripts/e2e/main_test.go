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
// bounded, and a failing step prints the logs it produced. See
// docs/e2e.md.
package e2e

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
)

// bins holds the binaries built once for the whole package.
var bins struct {
	serfHB, backend string
}

// required are the programs the tests drive; CI installs them with
// apt-get install serf haproxy s6.
var required = []string{"serf", "haproxy", "s6-svscan", "s6-svscanctl", "s6-svc", "s6-svstat", "s6-svok", "env"}

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
	if len(missing) > 0 {
		// Never skip: a machine without them must not pass silently.
		fmt.Fprintf(os.Stderr, "e2e: %s not found in $PATH; hint: apt-get install -y serf haproxy s6\n", strings.Join(missing, ", "))
		return 1
	}
	dir, err := os.MkdirTemp("", "serf-hb-e2e-bin-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	bins.serfHB = filepath.Join(dir, "serf-hb")
	bins.backend = filepath.Join(dir, "backend")
	if err := goBuild(bins.serfHB, "github.com/serf-hb/serf-hb"); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 1
	}
	if err := goBuild(bins.backend, "github.com/serf-hb/serf-hb/scripts/e2e/backend"); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 1
	}
	return m.Run()
}

// goBuild builds pkg into out with the go command that runs this test.
func goBuild(out, pkg string) error {
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(gobin); err != nil {
		if gobin, err = exec.LookPath("go"); err != nil {
			return fmt.Errorf("build %s: go command not found", pkg)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	b, err := exec.CommandContext(ctx, gobin, "build", "-o", out, pkg).CombinedOutput()
	if err != nil {
		return fmt.Errorf("build %s: %v: %s", pkg, err, b)
	}
	return nil
}
