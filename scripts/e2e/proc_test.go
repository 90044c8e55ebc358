package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is a process the test started and waits for.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has been waited for
}

// cleanEnv is the environment for every process the test starts: the
// caller's, without SERF_* and SERF_HB_* variables, which would change how
// serf and serf-hb behave (SERF_RPC_ADDR, SERF_HB_NODES_DIR, ...).
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SERF_") {
			env = append(env, kv)
		}
	}
	return env
}

// markVar marks every process a cluster starts: E2E_RUN_DIR=<its
// directory> in its environment, which s6 passes on to HAProxy and serf,
// and serf to serf-hb. procsOf finds them by it, so the cleanup kills
// nothing else, whatever PIDs were reused meanwhile.
const markVar = "E2E_RUN_DIR"

// startProc starts argv with its output appended to logPath, marked as a
// process of the cluster in runDir, with its working directory in dir.
func startProc(name, runDir, dir, logPath string, setsid bool, argv ...string) (*proc, error) {
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child has its own copy
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(cleanEnv(), markVar+"="+runDir)
	cmd.Stdout, cmd.Stderr = logf, logf
	// s6-svscan gets a session of its own, as it would under an init
	// system: a terminal's Ctrl-C must reach the test, not the services.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: setsid}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait waits up to d for the process to exit.
func (p *proc) wait(d time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		return false
	}
}

// stop sends sig and waits up to d, then kills the process. It reports
// whether the process exited of sig within d.
func (p *proc) stop(sig syscall.Signal, d time.Duration) bool {
	if p.exited() {
		return true
	}
	p.cmd.Process.Signal(sig)
	if p.wait(d) {
		return true
	}
	p.cmd.Process.Kill()
	p.wait(5 * time.Second)
	return false
}

// run runs a short command (serf members, s6-svc, ...) with a time limit
// and returns its stdout; the error carries stderr.
func run(timeout time.Duration, argv ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = cleanEnv()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%s: %v: %s", strings.Join(argv, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// procsOf lists the PIDs of the processes marked with runDir (markVar):
// everything the cluster started, including HAProxy processes orphaned by
// the lab's run script and the s6-supervise processes.
func procsOf(runDir string) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	mark := []byte(markVar + "=" + runDir)
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		for _, kv := range bytes.Split(env, []byte{0}) {
			if bytes.Equal(kv, mark) {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}

// haproxyPIDs lists the HAProxy processes running cfg (master, workers,
// old processes still finishing, orphans).
func haproxyPIDs(cfg string) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		argv := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if filepath.Base(argv[0]) != "haproxy" || !contains(argv, cfg) {
			continue
		}
		// A zombie keeps its command line until reaped: count live ones.
		if st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil {
			if f := strings.Fields(string(st[strings.LastIndexByte(string(st), ')')+1:])); len(f) > 0 && f[0] == "Z" {
				continue
			}
		}
		pids = append(pids, pid)
	}
	sort.Ints(pids)
	return pids
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
