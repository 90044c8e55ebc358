package harness

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Cmd describes a long-running process for Start.
type Cmd struct {
	Name string   // for messages: "serf agent web1"
	Argv []string // the program and its arguments
	Dir  string   // working directory; "" is the test's
	Env  []string // the whole environment; nil is CleanEnv()
	Log  string   // file stdout and stderr are appended to; "" discards them
	// Session gives the process a session of its own (setsid), as an init
	// system would: s6-svscan's services then never share the test's
	// terminal. Otherwise it gets a process group of its own.
	Session bool
}

// Proc is a process Start started; it is waited for in the background.
type Proc struct {
	Name string
	Log  string
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has been waited for
}

// live holds the processes whose groups are not known to be dead yet, for
// killOnSignal.
var live struct {
	sync.Mutex
	procs map[*Proc]bool
}

// Start starts c as the leader of a new process group (or session) and
// registers, in t.Cleanup, a SIGKILL of the whole group: the process and
// everything it started that stayed in its group (a serf agent's handler
// runs, s6-supervise and its services).
func Start(t testing.TB, c Cmd) (*Proc, error) {
	t.Helper()
	if len(c.Argv) == 0 {
		return nil, fmt.Errorf("start %s: no command", c.Name)
	}
	cmd := exec.Command(c.Argv[0], c.Argv[1:]...)
	cmd.Dir = c.Dir
	cmd.Env = c.Env
	if cmd.Env == nil {
		cmd.Env = CleanEnv()
	}
	if c.Log != "" {
		f, err := os.OpenFile(c.Log, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return nil, fmt.Errorf("start %s: %v", c.Name, err)
		}
		defer f.Close() // the child has its own copy
		cmd.Stdout, cmd.Stderr = f, f
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: !c.Session, Setsid: c.Session}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %v", c.Name, err)
	}
	p := &Proc{Name: c.Name, Log: c.Log, cmd: cmd, done: make(chan struct{})}
	live.Lock()
	if live.procs == nil {
		live.procs = map[*Proc]bool{}
	}
	live.procs[p] = true
	live.Unlock()
	go func() {
		cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(p.Kill)
	return p, nil
}

// PID returns the process's PID, which is also its group's ID.
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Exited reports whether the process has exited (and been waited for).
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Wait waits up to d for the process to exit, and reports whether it did.
func (p *Proc) Wait(d time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		return false
	}
}

// Signal sends sig to the process alone, not its group: SIGINT makes a
// serf agent leave gracefully, and its handler runs must not see it.
func (p *Proc) Signal(sig syscall.Signal) error {
	if p.Exited() {
		return nil
	}
	return p.cmd.Process.Signal(sig)
}

// Stop sends sig to the process and waits up to d; then it kills the
// group. It reports whether the process exited of sig within d.
func (p *Proc) Stop(sig syscall.Signal, d time.Duration) bool {
	if p.Exited() {
		return true
	}
	p.Signal(sig)
	if p.Wait(d) {
		return true
	}
	p.Kill()
	return false
}

// Kill sends SIGKILL to the process's group, whether or not the leader is
// still running (what it started may be), and waits up to 10 s for the
// leader. The group ID cannot have been reused while any member lives.
func (p *Proc) Kill() {
	syscall.Kill(-p.PID(), syscall.SIGKILL)
	p.Wait(10 * time.Second)
	live.Lock()
	delete(live.procs, p)
	live.Unlock()
}

// killOnSignal kills every live process group when the test binary gets
// SIGINT, SIGTERM or SIGHUP (a Ctrl-C: the groups are not the terminal's,
// and no t.Cleanup runs on a signal), removes the built binaries, then
// exits. The returned func stops
// the handling.
func killOnSignal() func() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	quit := make(chan struct{})
	go func() {
		select {
		case sig := <-ch:
			live.Lock()
			for p := range live.procs {
				syscall.Kill(-p.PID(), syscall.SIGKILL)
			}
			live.Unlock()
			if binDir != "" {
				os.RemoveAll(binDir)
			}
			fmt.Fprintf(os.Stderr, "harness: %v: killed the processes the tests started\n", sig)
			os.Exit(2)
		case <-quit:
		}
	}()
	return func() {
		signal.Stop(ch)
		close(quit)
	}
}

// CleanEnv is the environment for the processes the suites start: the
// test's, without SERF_* and SERF_HB_* variables, which would change how
// serf and serf-hb behave (SERF_RPC_ADDR, SERF_HB_NODES_DIR, ...).
func CleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SERF_") {
			env = append(env, kv)
		}
	}
	return env
}

// Run runs a short command (serf members, s6-svc, haproxy -c) with a time
// limit and env (nil is CleanEnv()), and returns its stdout; the error
// names the command and carries its stderr.
func Run(timeout time.Duration, env []string, argv ...string) (string, error) {
	return run(timeout, env, nil, argv)
}

// RunStdin is Run with stdin as the command's standard input and
// CleanEnv() as its environment (nft -f -).
func RunStdin(timeout time.Duration, stdin string, argv ...string) (string, error) {
	return run(timeout, nil, strings.NewReader(stdin), argv)
}

func run(timeout time.Duration, env []string, stdin io.Reader, argv []string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = env
	if env == nil {
		cmd.Env = CleanEnv()
	}
	cmd.Stdin = stdin
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = time.Second
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%s: %v: %s", strings.Join(argv, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// MarkedPIDs lists the processes whose environment holds kv
// ("E2E_RUN_DIR=/tmp/x"), the test binary aside: everything a suite
// started with that mark, whatever group or session it moved to (s6 runs
// each service in a session of its own; a run script may orphan HAProxy),
// and never a process that merely reused a PID.
func MarkedPIDs(kv string) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	mark := []byte(kv)
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		env, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		for _, v := range bytes.Split(env, []byte{0}) {
			if bytes.Equal(v, mark) {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}

// KillAll kills (SIGKILL) the processes list returns, until it returns
// none, for 5 s at most; it logs the first ones it kills as what, and
// fails t if some outlive it.
func KillAll(t testing.TB, what string, list func() []int) {
	t.Helper()
	for i := 0; i < 50; i++ {
		pids := list()
		if len(pids) == 0 {
			return
		}
		if i == 0 {
			t.Logf("killing %s %v", what, pids)
		}
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if pids := list(); len(pids) > 0 {
		t.Errorf("%s still running: %v", what, pids)
	}
}
