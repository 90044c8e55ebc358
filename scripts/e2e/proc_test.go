package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/serf-hb/serf-hb/scripts/internal/harness"
)

// markVar marks every process a cluster starts: E2E_RUN_DIR=<its
// directory> in its environment, which s6 passes on to HAProxy and serf,
// and serf to serf-hb. procsOf finds them by it, so the cleanup kills
// nothing else, whatever PIDs were reused meanwhile, including processes
// that left the group they were started in (s6 runs each service in a
// session of its own; the lab's run script orphans HAProxy).
const markVar = "E2E_RUN_DIR"

// start starts argv with its output appended to logPath, marked as a
// process of the cluster in c.dir, with its working directory in dir.
func (c *cluster) start(name, dir, logPath string, session bool, argv ...string) *harness.Proc {
	c.t.Helper()
	p, err := harness.Start(c.t, harness.Cmd{
		Name: name, Argv: argv, Dir: dir, Log: logPath, Session: session,
		Env: append(harness.CleanEnv(), markVar+"="+c.dir),
	})
	c.must(err)
	return p
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
		if filepath.Base(argv[0]) != "haproxy" || !slices.Contains(argv, cfg) {
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
