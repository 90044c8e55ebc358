package e2e

import (
	"github.com/serf-hb/serf-hb/scripts/internal/harness"
)

// markVar marks every process a cluster starts: E2E_RUN_DIR=<its
// directory> in its environment, which s6 passes on to HAProxy and serf,
// and serf to serf-hb. harness.MarkedPIDs finds them by it, so the cleanup kills
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
