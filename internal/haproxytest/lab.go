package haproxytest

import (
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The package tests' real-component kit (handler/haproxy, handler/master,
// handler/s6): what every one of them needs to run a program for real and
// stop it, written once. The suites under scripts/ have their own, larger
// harness (scripts/internal/harness), which a package outside scripts/
// cannot import.

// RequireTools fails the test, naming what to install, when a program is
// missing: these tests prove behaviour against the real thing, and never
// skip.
func RequireTools(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			pkg := n
			if strings.HasPrefix(n, "s6-") {
				pkg = "s6"
			}
			t.Fatalf("%s not found on $PATH: these tests run the real %s; hint: apt-get install -y %s", n, pkg, pkg)
		}
	}
}

// ShortDir returns a new directory with a short path (a unix socket's path
// must fit in 108 bytes), mode 0755 so that another user can reach it,
// removed at the end of the test.
func ShortDir(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp("", "hb")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

// WaitFor polls cond every 5 ms until it holds, failing the test after
// limit.
func WaitFor(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(limit); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
	}
}

// StartScan starts a real s6-svscan on scan, in a session of its own, its
// output in out. When the test ends it is stopped with s6-svscanctl -t,
// then its process group (s6-svscan, every s6-supervise and service) is
// killed whatever happened.
func StartScan(t testing.TB, scan string, out io.Writer) {
	t.Helper()
	RequireTools(t, "s6-svscan", "s6-supervise", "s6-svscanctl")
	// env --default-signal: a run script that inherits an ignored SIGHUP
	// (the test run under nohup) would never see s6-svc -h.
	cmd := exec.Command("env", "--default-signal", "s6-svscan", scan)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start s6-svscan: %v", err)
	}
	t.Cleanup(func() {
		exec.Command("s6-svscanctl", "-t", scan).Run()
		stop(cmd, 0)
	})
}

// StopGroup stops a process started with Setpgid or Setsid and all it
// started: SIGTERM to the group, then SIGKILL after 3 s.
func StopGroup(cmd *exec.Cmd) { stop(cmd, syscall.SIGTERM) }

// stop sends sig (none for 0) to cmd's group, waits up to 3 s for cmd,
// then kills the group and waits.
func stop(cmd *exec.Cmd, sig syscall.Signal) {
	if sig != 0 {
		syscall.Kill(-cmd.Process.Pid, sig)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-done
}

// Silent listens on addr (network "unix" or "tcp"; port 0 picks one),
// accepts every connection and never answers, as a wedged HAProxy or agent
// would, until the test ends; it returns the address.
func Silent(t testing.TB, network, addr string) string {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

// Refusing leaves a unix socket file at path that nothing listens on, as
// a stopped HAProxy does, and returns path once a connection to it is
// refused: a process forked meanwhile (by a test running beside) holds a
// copy of the listening socket until it execs, and a connection made then
// is reset rather than refused.
func Refusing(t testing.TB, path string) string {
	t.Helper()
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	WaitFor(t, 5*time.Second, path+" to refuse connections", func() bool {
		c, err := net.Dial("unix", path)
		if err == nil {
			c.Close()
		}
		return errors.Is(err, syscall.ECONNREFUSED)
	})
	return path
}
