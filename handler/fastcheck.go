package handler

// The fast check: on the live path, where HAProxy takes a membership
// change through its runtime API and does not read the file, a proof that
// the new file is valid given the installed one (haproxy.FastCheck) stands
// in for a whole-file `haproxy -c`, which costs 0.7-2.2 s at 10,000
// servers. The file is then marked unchecked in the registry, and the full
// check runs on it before anything loads it by a reload: a file HAProxy
// would refuse is never installed on a guess, nor reloaded unchecked.

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/serf-hb/serf-hb/handler/haproxy"
	"github.com/serf-hb/serf-hb/nodestore"
)

// fastCheck starts the proof that installed -> out is valid. For a big
// file (aheadBytes) it runs in a goroutine of its own while the change is
// applied and verified live (at 10,000 servers ~10 ms of CPU beside a wait
// on HAProxy's answers); for a small one, when asked. The function it
// returns, called once, reports whether the proof stands in for --check.
// Only HAProxy's own check (`haproxy -c`), which the proof is tested
// against, is stood in for: any other validator, an operator's lint,
// always runs.
func (r *run) fastCheck(installed, out []byte) (stands func() bool) {
	if !r.fastCheckable() || installed == nil {
		return func() bool { return false }
	}
	var (
		ok   bool
		why  string
		done = make(chan struct{})
	)
	prove := func() {
		ok, why = haproxy.FastCheck(installed, out)
		close(done)
	}
	ahead := len(out) >= aheadBytes
	if ahead {
		go prove()
	}
	return func() bool {
		if !ahead {
			prove()
		}
		<-done
		r.rep.Checked = "fast"
		if !ok {
			r.rep.Checked = "full: " + why
		}
		return ok
	}
}

// fastCheckable reports whether the fast check may stand in for this
// run's check: the live path is on, and the check is HAProxy's own.
func (r *run) fastCheckable() bool {
	argv, err := r.cfg.checkArgv("/staged")
	return r.cfg.HAProxySocket != "" && err == nil && len(argv) > 0 &&
		filepath.Base(argv[0]) == "haproxy" && slices.Contains(argv, "-c")
}

// aheadBytes is the output size from which a run reads the installed and
// new files, and fsyncs the new one, in goroutines of their own, beside
// other work (fastCheck, parseAhead, Pending.SyncAhead). Below it, ~750
// servers, the goroutines' threads cost more CPU than the overlap saves
// (measured: ~1 ms a run at 100 servers); at 1,000 servers the overlap
// saves ~2 ms of a 20 ms update or leave.
const aheadBytes = 64 << 10

// uncheckedFlag is set while the installed output passed the fast check
// only.
func (r *run) uncheckedFlag() string { return "unchecked " + r.absOutput() }

// markUnchecked records whether the output about to be installed passed
// the fast check only (fast), or the full check.
func (r *run) markUnchecked(st *nodestore.Store, fast bool) error {
	if err := st.SetFlag(r.uncheckedFlag(), fast); err != nil {
		return fmt.Errorf("mark the output's check: %v", err)
	}
	return nil
}

// checkBeforeReload runs the full check on the installed output when only
// the fast check passed it, since a reload is about to load it. A refusal
// (the proof was wrong, or the validator changed) stops the reload, which
// stays due.
func (r *run) checkBeforeReload(ctx context.Context, st *nodestore.Store) error {
	if !st.Flag(r.uncheckedFlag()) {
		return nil
	}
	argv, err := r.cfg.checkArgv(r.cfg.Output)
	if err == nil && argv != nil {
		err = runCommand(ctx, argv, r.cfg.CheckTimeout)
	}
	if err != nil {
		return &ExitError{Code: ExitCheck, Err: fmt.Errorf("check %s before the reload (it was installed on the fast check): %v; not reloaded, the reload stays due", r.cfg.Output, err)}
	}
	r.rep.Checked = "full"
	return r.markUnchecked(st, false)
}
