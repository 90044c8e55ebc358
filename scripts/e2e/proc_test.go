package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"

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
