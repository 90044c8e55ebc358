// Package haproxytest names the HAProxy binary that every test starting or
// running HAProxy uses: $HAPROXY_BIN when it is set, else haproxy from
// $PATH (Debian 12's 2.6.12). scripts/test.sh runs the HAProxy suites a
// second time with HAPROXY_BIN=$(scripts/haproxy3.sh), Debian 13's 3.0.11.
//
// One way to find it, so that no test runs one HAProxy while another test
// of the same pass validates with a different one. Under -v each package
// names the binary and its version once ("live: haproxy is PATH (HAProxy
// version ...)"): that line is how test.sh knows which HAProxy a pass ran.
//
// It also holds the package tests' kit for running real programs
// (lab.go: RequireTools, ShortDir, WaitFor, StartScan, StopGroup, Silent),
// which handler/haproxy, handler/master and handler/s6 share: they cannot
// import scripts/internal/harness.
//
// It is test code: it never reads serf-hb's packages.
package haproxytest

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kballard/go-shellquote"
)

// Env names the environment variable that chooses the HAProxy binary: a
// path or a command name.
const Env = "HAPROXY_BIN"

// Path returns the HAProxy binary to run, as an absolute path.
func Path() (string, error) {
	name := os.Getenv(Env)
	if name == "" {
		name = "haproxy"
	}
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv(Env) != "" {
			return "", fmt.Errorf("%s=%s: %v; hint: unset it to use haproxy from $PATH, or get HAProxy 3.0: HAPROXY_BIN=$(scripts/haproxy3.sh)", Env, name, err)
		}
		return "", fmt.Errorf("haproxy not found on $PATH; hint: apt-get install -y haproxy (scripts/test.sh installs it), or set %s", Env)
	}
	return filepath.Abs(p)
}

// Version returns the first line of `path -v` ("HAProxy version
// 3.0.11-1+deb13u4 2026/10/15 - https://haproxy.org/"), or what went wrong.
func Version(path string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "-v").Output()
	first, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	if err != nil {
		return "haproxy -v: " + err.Error()
	}
	return first
}

// Line is what a package prints under -v to name the HAProxy it runs.
func Line(pkg, path string) string {
	return fmt.Sprintf("%s: haproxy is %s (%s)", pkg, path, Version(path))
}

// Check returns serf-hb's --check command line validating with path:
// `PATH -c -f {}`, quoted as serf-hb splits it.
func Check(path string) string {
	return shellquote.Join(path, "-c", "-f") + " {}"
}

// Shim makes dir/haproxy a symlink to path and returns dir, to put first
// on the $PATH of scripts that run `haproxy` by name (s6 run scripts, the
// lab's image). A symlink keeps master-worker mode working: the master
// re-executes the file the link names.
func Shim(dir, path string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	link := filepath.Join(dir, "haproxy")
	if err := os.Remove(link); err != nil && !os.IsNotExist(err) {
		return "", err
	}
	if err := os.Symlink(path, link); err != nil {
		return "", err
	}
	return dir, nil
}

// Setup is for a package's TestMain: it finds the binary (Path), prints
// Line under -v, and puts a Shim of it in dir first on this process's
// $PATH, so that every program the tests start (s6 run scripts, serf
// agents' handlers) runs the same HAProxy by name.
func Setup(pkg, dir string) (string, error) {
	path, err := Path()
	if err != nil {
		return "", err
	}
	if !flag.Parsed() {
		flag.Parse() // for testing.Verbose, in a TestMain before m.Run
	}
	if testing.Verbose() {
		fmt.Fprintln(os.Stderr, Line(pkg, path))
	}
	shim, err := Shim(dir, path)
	if err != nil {
		return "", fmt.Errorf("haproxy shim: %v", err)
	}
	os.Setenv("PATH", shim+string(os.PathListSeparator)+os.Getenv("PATH"))
	return path, nil
}

// PrependPath returns env with dir first on its PATH (the process's PATH
// when env has none).
func PrependPath(env []string, dir string) []string {
	out := make([]string, 0, len(env)+1)
	path := os.Getenv("PATH")
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
			continue
		}
		out = append(out, kv)
	}
	return append(out, "PATH="+dir+string(os.PathListSeparator)+path)
}

var (
	once    sync.Once
	binPath string
	binErr  error
)

// Require returns the HAProxy binary for a test of package pkg, failing
// the test (never skipping it) when there is none. The first call prints
// Line under -v.
func Require(t testing.TB, pkg string) string {
	t.Helper()
	once.Do(func() {
		binPath, binErr = Path()
		if binErr == nil && testing.Verbose() {
			fmt.Fprintln(os.Stderr, Line(pkg, binPath))
		}
	})
	if binErr != nil {
		t.Fatalf("%s: %v", pkg, binErr)
	}
	return binPath
}
