package handler

// Reloading: the reload command (s6-svc -h/-2 DIR done in process, any
// other command executed), and, with --haproxy-master-socket, a reload
// verified on HAProxy's master CLI. A reload that HAProxy refuses rolls
// the output back to the last known good file, so that what is on disk is
// what runs, and a restart of the host loads a config that works.

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/serf-hb/serf-hb/handler/master"
	"github.com/serf-hb/serf-hb/handler/s6"
	"github.com/serf-hb/serf-hb/nodestore"
	"github.com/serf-hb/serf-hb/render"
)

// resRolledBack is the result of a reload HAProxy refused, its output
// restored to the last known good.
const resRolledBack = "rolled-back"

// lkgPath is where the last known good output is kept.
func (r *run) lkgPath() string { return r.cfg.Output + ".lkg" }

// rejectedPath is where a refused output is kept for the operator.
func (r *run) rejectedPath() string { return r.cfg.Output + ".rejected" }

// reload makes the service take the installed output, when a reload is
// due, and clears the due flag once it took; it returns its result, "" when
// it reloaded nothing. On failure the flag stays and the next run retries,
// except after a rollback: the file HAProxy refused is no longer
// installed, so no reload of it is due. prev is the output installed
// before this run (nil: unchanged), for the server states kept.
func (r *run) reload(ctx context.Context, st *nodestore.Store, installed, prev []byte) (string, error) {
	if !r.reloadDue(st) {
		return "", nil
	}
	trigger, err := r.trigger()
	if err != nil || trigger == nil && r.cfg.MasterSocket == "" {
		return "", err // nothing reloads this output
	}
	if err := r.checkBeforeReload(ctx, st); err != nil {
		return resCheckFailed, err
	}
	r.dumpState(ctx, st, installed, prev)
	if r.cfg.MasterSocket == "" {
		err = trigger(ctx)
	} else {
		var refused string
		if refused, err = r.verifiedReload(ctx, trigger, installed); refused != "" {
			if refused == resRolledBack {
				err = errors.Join(err, r.clearReloadDue(st))
			}
			return refused, err
		}
	}
	if err != nil {
		return resReloadFailed, &ExitError{Code: ExitReload, Err: fmt.Errorf("reload: %v; it is retried on the next run", err)}
	}
	r.reloaded(st)
	return resReloaded, r.clearReloadDue(st)
}

// legacyReloadFlag is the flag versions before per-output flags set: a
// reload it marks due is honoured once, then cleared.
const legacyReloadFlag = "reload-pending"

// reloadDue reports whether a reload of this output is due.
func (r *run) reloadDue(st *nodestore.Store) bool {
	return st.Flag(r.reloadFlag()) || st.Flag(legacyReloadFlag)
}

// reloadDueBefore reports whether a reload was due before this run: the
// adds a run sends ahead (r.unsettled) are sent only with none due, and
// mark one due themselves until applyLive settles them.
func (r *run) reloadDueBefore(st *nodestore.Store) bool {
	return r.unsettled == nil && r.reloadDue(st)
}

func (r *run) clearReloadDue(st *nodestore.Store) error {
	for _, f := range []string{r.reloadFlag(), legacyReloadFlag} {
		if err := st.SetFlag(f, false); err != nil {
			return fmt.Errorf("clear reload flag: %v", err)
		}
	}
	return nil
}

// trigger returns what sets the reload off: the reload command, or nil
// when none is configured (with a master socket, the master CLI's own
// reload command then triggers it).
func (r *run) trigger() (func(context.Context) error, error) {
	argv, err := r.cfg.reloadArgv()
	if err != nil || argv == nil {
		return nil, err
	}
	if sig, ok := s6.Parse(argv); ok {
		return func(context.Context) error { return s6Error(argv, sig.Send()) }, nil
	}
	return func(ctx context.Context) error { return runCommand(ctx, argv, r.cfg.ReloadTimeout) }, nil
}

// verifiedReload triggers the reload and watches the master CLI until the
// new worker runs or the reload failed. A refused reload restores the last
// known good output, keeps the refused one beside it, and fails with
// HAProxy's own startup error lines; a verified one makes the installed
// output the last known good.
func (r *run) verifiedReload(ctx context.Context, trigger func(context.Context) error, installed []byte) (refused string, err error) {
	mc := master.Client{Addr: r.cfg.MasterSocket, Timeout: r.cfg.ReloadTimeout, Log: r.cfg.HAProxyLog}
	res, err := mc.Reload(ctx, trigger)
	var re *master.ReloadError
	if errors.As(err, &re) {
		err, restored := r.rollback(re)
		refused = resReloadFailed
		if restored {
			refused = resRolledBack
		}
		return refused, &ExitError{Code: ExitReload, Err: err}
	}
	if err != nil {
		return "", err
	}
	r.rep.Verified = res.Wait
	if err := render.WriteFile(r.lkgPath(), installed); err != nil {
		r.rep.Warnings = append(r.rep.Warnings, fmt.Sprintf("keep last known good: %v", err))
	}
	return "", nil
}

// rollback puts the last known good output back in place of the one
// HAProxy refused, which is kept as OUTPUT.rejected, and returns the
// error that says so, and whether the output was restored: only then is
// the run rolled back.
func (r *run) rollback(re *master.ReloadError) (error, bool) {
	refused, err := os.ReadFile(r.cfg.Output)
	if err == nil {
		err = render.WriteFile(r.rejectedPath(), refused)
	}
	if err != nil {
		return fmt.Errorf("%v; keep the refused file as %s: %v; %s left as it is", re, r.rejectedPath(), err, r.cfg.Output), false
	}
	lkg, err := os.ReadFile(r.lkgPath())
	if err != nil {
		return fmt.Errorf("%v; refused file kept as %s; no last known good to restore (%v): %s still holds the refused file and HAProxy runs the one before it; hint: fix the template, then serf-hb render", re, r.rejectedPath(), err, r.cfg.Output), false
	}
	if err := render.WriteFile(r.cfg.Output, lkg); err != nil {
		return fmt.Errorf("%v; refused file kept as %s; restore %s: %v", re, r.rejectedPath(), r.lkgPath(), err), false
	}
	return fmt.Errorf("%v; %s restored from %s (what HAProxy runs), refused file kept as %s; the registry keeps the membership and the next change tries again", re, r.cfg.Output, r.lkgPath(), r.rejectedPath()), true
}

// stagedLKG is the last known good output of a live run, written and
// fsynced in a goroutine while HAProxy takes the change and the run
// commits its output (at 10,000 servers the write and fsync of a 700 KB
// file cost 2-8 ms), and renamed into place only after the file it copies
// is installed and verified live. The goroutine first seeds the last
// known good from the installed output when there is none
// (seedLastKnownGood): its master CLI query then waits beside HAProxy
// taking the change, not inside the runtime API's deadline, and the seed
// and the staging never remove each other's temp files.
type stagedLKG struct {
	seeded  chan struct{} // closed once seedErr is set
	seedErr error
	done    chan struct{} // closed once p and err are set
	p       *render.Pending
	err     error
}

// stageLastKnownGood starts seeding the last known good from installed,
// when there is none, then writing content as the next one.
func (r *run) stageLastKnownGood(ctx context.Context, installed, content []byte) *stagedLKG {
	s := &stagedLKG{seeded: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		s.seedErr = r.seedLastKnownGood(ctx, installed)
		close(s.seeded)
		if s.p, s.err = render.Stage(r.lkgPath(), content); s.err == nil {
			s.err = s.p.Sync()
		}
	}()
	return s
}

// seed waits for the seeding to end and returns its error, once (nil s:
// nothing staged).
func (s *stagedLKG) seed() error {
	if s == nil {
		return nil
	}
	<-s.seeded
	err := s.seedErr
	s.seedErr = nil
	return err
}

// commit puts the staged last known good in place (nil: none staged).
func (s *stagedLKG) commit() error {
	if s == nil {
		return nil
	}
	<-s.done
	if s.err != nil {
		return s.err
	}
	_, err := s.p.Commit()
	return err
}

// cleanup waits for the staging to end and removes what was not
// committed (nil: none staged).
func (s *stagedLKG) cleanup() {
	if s == nil {
		return
	}
	<-s.done
	if s.p != nil {
		s.p.Cleanup()
	}
}

// seedLastKnownGood keeps the installed output as the last known good
// before it is replaced, when there is none yet (HAProxy started from a
// file rendered before --haproxy-master-socket was set, or by other
// means): no reload of it is due, so it is the file HAProxy loaded, and a
// worker serving proves it good. Without this, the first refused reload
// would leave the refused file installed with nothing to restore. It costs
// one master CLI query, once per output. The error is a warning's.
func (r *run) seedLastKnownGood(ctx context.Context, cur []byte) error {
	if r.cfg.MasterSocket == "" || cur == nil {
		return nil
	}
	if _, err := os.Stat(r.lkgPath()); !errors.Is(err, os.ErrNotExist) {
		return nil
	}
	mc := master.Client{Addr: r.cfg.MasterSocket, Timeout: r.cfg.ReloadTimeout}
	procs, err := mc.ShowProc(ctx)
	if _, running := procs.Current(); err != nil || !running {
		return nil
	}
	if err := render.WriteFile(r.lkgPath(), cur); err != nil {
		return fmt.Errorf("keep last known good: %v", err)
	}
	return nil
}

// s6Error words a failed in-process s6-svc as the failed command would
// have been (s6.Error.Words).
func s6Error(argv []string, err error) error {
	var se *s6.Error
	if !errors.As(err, &se) {
		return err
	}
	return &commandError{Argv: argv, msg: commandString(argv) + ": " + se.Words(argv), Err: err}
}
