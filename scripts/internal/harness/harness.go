// Package harness is what the real-component suites (scripts/e2e,
// scripts/reliability, scripts/synctest, scripts/rolling) share: building
// serf-hb once per test binary, the serf binary they drive, starting and
// stopping processes, bounded waits, reading the registry and HAProxy's
// runtime API and master CLI the way an outside observer would, and
// showing a failed step's logs.
//
// Invariants:
//   - A suite never skips: when a program it drives is missing, Main prints
//     one line naming what to install and the test binary exits 1.
//   - Every process Start starts is the leader of a process group of its
//     own, killed as a group in t.Cleanup, or when the test binary is
//     interrupted (SIGINT, SIGTERM, SIGHUP) before its cleanups can run.
//   - Every wait is bounded in time and in the number of tries.
//
// It is test code: it may fail a test (testing.TB), and it never reads
// serf-hb's packages, so that a bug in them cannot hide in the oracle.
package harness

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/serf-hb/serf-hb/internal/haproxytest"
)

// Module is serf-hb's module path: the main package Main always builds.
const Module = "github.com/serf-hb/serf-hb"

// Suite describes a real-component test package for Main.
type Suite struct {
	// Name starts every line Main prints ("e2e").
	Name string
	// Needs lists the programs the suite runs, looked up on $PATH; "serf"
	// stands for the binary Serf returns, which Bin("serf") then gives;
	// "haproxy" for $HAPROXY_BIN or haproxy from $PATH (haproxytest.Path),
	// which Bin("haproxy") gives and which Main puts first on $PATH for the
	// programs the tests start.
	Needs []string
	// Build lists main packages to build besides serf-hb, by import path.
	Build []string
	// Race builds the binaries with -race when the test binary is a race
	// build, so that concurrency tests check serf-hb itself. A race build
	// waits a second before it exits (GORACE=atexit_sleep_ms=0 avoids it).
	Race bool
	// Static builds with CGO_ENABLED=0, as release builds are (not with
	// Race, which needs cgo).
	Static bool
	// Setup runs after the build, with the temporary directory the
	// binaries are in (removed after the tests); nil for none.
	Setup func(dir string) error
	// Done runs after the tests; nil for none. Its error is printed, and
	// fails a run whose tests passed.
	Done func() error
}

// binDir is where Main built the binaries; serfBin and haproxyBin are the
// serf and haproxy binaries it found, when the suite needs them.
var binDir, serfBin, haproxyBin string

// Bin returns the path of a binary Main built, by the last element of its
// package's import path ("serf-hb", "backend"), or for "serf" and
// "haproxy", the binary Main found (Serf, haproxytest.Path).
func Bin(name string) string {
	if name == "serf" && serfBin != "" {
		return serfBin
	}
	if name == "haproxy" && haproxyBin != "" {
		return haproxyBin
	}
	return filepath.Join(binDir, name)
}

// Main is a suite's TestMain: it checks that the programs the suite needs
// are installed, builds serf-hb and the suite's other binaries into a
// temporary directory (removed afterwards), runs Setup, the tests and
// Done, and returns the exit code for os.Exit.
func Main(m *testing.M, s Suite) int {
	flag.Parse() // for testing.Verbose
	if err := checkNeeds(s.Needs); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", s.Name, err)
		return 1
	}
	dir, err := os.MkdirTemp("", "serf-hb-"+s.Name+"-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", s.Name, err)
		return 1
	}
	defer os.RemoveAll(dir)
	// Some tests run serf-hb as an unprivileged user, which must reach it.
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", s.Name, err)
		return 1
	}
	binDir = dir
	if err := build(dir, s.Race && RaceEnabled, s.Static, append([]string{Module}, s.Build...)); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", s.Name, err)
		return 1
	}
	if slices.Contains(s.Needs, "serf") {
		serfBin, _ = Serf() // checkNeeds found it
		if testing.Verbose() {
			fmt.Fprintf(os.Stderr, "%s: serf is %s (%s)\n", s.Name, serfBin, SerfVersion(serfBin))
		}
	}
	if slices.Contains(s.Needs, "haproxy") {
		if haproxyBin, err = haproxytest.Setup(s.Name, filepath.Join(dir, "haproxy-path")); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", s.Name, err)
			return 1
		}
	}
	stop := killOnSignal()
	defer stop()
	if s.Setup != nil {
		if err := s.Setup(dir); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", s.Name, err)
			return 1
		}
	}
	code := m.Run()
	if s.Done != nil {
		if err := s.Done(); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", s.Name, err)
			if code == 0 {
				code = 1
			}
		}
	}
	return code
}

// debianPackage names the Debian package that brings a program the suites
// run, for the install hint.
func debianPackage(program string) string {
	switch {
	case strings.HasPrefix(program, "s6-"):
		return "s6"
	case program == "ip":
		return "iproute2"
	case program == "nft":
		return "nftables"
	case program == "env":
		return "coreutils"
	}
	return program
}

// checkNeeds returns one error naming every missing program.
func checkNeeds(needs []string) error {
	var missing, pkgs []string
	for _, p := range needs {
		if p == "serf" {
			if _, err := Serf(); err != nil {
				if os.Getenv(SerfEnv) != "" {
					return err
				}
				missing = append(missing, p)
			}
			continue
		}
		if p == "haproxy" {
			if _, err := haproxytest.Path(); err != nil {
				if os.Getenv(haproxytest.Env) != "" {
					return err
				}
				missing = append(missing, p)
			}
			continue
		}
		if _, err := exec.LookPath(p); err != nil {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		for _, p := range missing {
			if pkg := debianPackage(p); !slices.Contains(pkgs, pkg) {
				pkgs = append(pkgs, pkg)
			}
		}
		// Never skip: a machine without them must not pass silently.
		return fmt.Errorf("%s not found on $PATH; hint: apt-get install -y %s (scripts/test.sh installs them)",
			strings.Join(missing, ", "), strings.Join(pkgs, " "))
	}
	return nil
}

// build builds pkgs into dir with the go command that runs the tests (go
// test puts its GOROOT/bin first on $PATH), each binary named after the
// last element of its import path.
func build(dir string, race, static bool, pkgs []string) error {
	gobin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("build %s: go command not found on $PATH", strings.Join(pkgs, " "))
	}
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	if race {
		args = append(args, "-race")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, gobin, append(args, pkgs...)...)
	if static {
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out)
	}
	for _, p := range pkgs {
		if _, err := os.Stat(filepath.Join(dir, path.Base(p))); err != nil {
			return fmt.Errorf("build %s: %v", p, err)
		}
	}
	return nil
}

// HAProxyCheck is serf-hb's --check validating with the suite's HAProxy:
// `PATH -c -f {}`.
func HAProxyCheck() string { return haproxytest.Check(Bin("haproxy")) }
