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
	"strings"

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
// due, and clears the due flag once it took. On failure the flag stays and
// the next run retries, except after a rollback: the file HAProxy refused
// is no longer installed, so no reload of it is due.
func (r *run) reload(ctx context.Context, st *nodestore.Store, installed []byte) error {
	if !r.reloadDue(st) {
		return nil
	}
	trigger, err := r.trigger()
	if err != nil || trigger == nil && r.cfg.MasterSocket == "" {
		return err // nothing reloads this output
	}
	if err := r.checkBeforeReload(ctx, st); err != nil {
		r.rep.Result = resCheckFailed
		return err
	}
	r.dumpState(ctx, st, installed)
	if r.cfg.MasterSocket == "" {
		err = trigger(ctx)
	} else {
		err = r.verifiedReload(ctx, st, trigger, installed)
	}
	if r.rep.Result == resRolledBack {
		return errors.Join(err, r.clearReloadDue(st))
	}
	if err != nil {
		r.rep.Result = resReloadFailed
		return &ExitError{Code: ExitReload, Err: fmt.Errorf("reload: %v; it is retried on the next run", err)}
	}
	r.rep.Result = resReloaded
	r.reloaded(st)
	return r.clearReloadDue(st)
}

// legacyReloadFlag is the flag versions before per-output flags set: a
// reload it marks due is honoured once, then cleared.
const legacyReloadFlag = "reload-pending"

// reloadDue reports whether a reload of this output is due.
func (r *run) reloadDue(st *nodestore.Store) bool {
	return st.Flag(r.reloadFlag()) || st.Flag(legacyReloadFlag)
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

// s6Error words a failed in-process s6-svc as the failed command would
// have been: its exit status, what it means, s6-svc's own message, and
// what to do.
func s6Error(argv []string, err error) error {
	var se *s6.Error
	if !errors.As(err, &se) {
		return err
	}
	dir := se.Signal.Dir
	fatal := fmt.Sprintf("unable to control %s: supervisor not listening", dir)
	switch {
	case se.Code == s6.CodeNotListening && se.Err != nil:
		fatal = fmt.Sprintf("something is wrong with the %s/supervise directory: %s", dir, strerror(se.Err))
	case se.Err != nil:
		fatal = fmt.Sprintf("unable to control %s: %s", dir, strerror(se.Err))
	}
	msg := fmt.Sprintf("%s: exited %d (%s): s6-svc: fatal: %s", commandString(argv), se.Code, s6Hint(argv, se.Code), fatal)
	if _, hint, ok := strings.Cut(se.Error(), "hint: "); ok {
		msg += "; hint: " + hint
	}
	return &commandError{Argv: argv, msg: msg, Err: err}
}

// strerror spells an errno as C's strerror does ("No such file or
// directory"), as s6-svc prints it.
func strerror(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	s := err.Error()
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// verifiedReload triggers the reload and watches the master CLI until the
// new worker runs or the reload failed. A refused reload restores the last
// known good output, keeps the refused one beside it, and fails with
// HAProxy's own startup error lines; a verified one makes the installed
// output the last known good.
func (r *run) verifiedReload(ctx context.Context, st *nodestore.Store, trigger func(context.Context) error, installed []byte) error {
	mc := master.Client{Addr: r.cfg.MasterSocket, Timeout: r.cfg.ReloadTimeout, Log: r.cfg.HAProxyLog}
	res, err := mc.Reload(ctx, trigger)
	var re *master.ReloadError
	if errors.As(err, &re) {
		err, restored := r.rollback(re)
		r.rep.Result = resReloadFailed
		if restored {
			r.rep.Result = resRolledBack
		}
		return &ExitError{Code: ExitReload, Err: err}
	}
	if err != nil {
		return err
	}
	r.rep.Verified = res.Wait
	if err := render.WriteFile(r.lkgPath(), installed); err != nil {
		r.rep.Warnings = append(r.rep.Warnings, fmt.Sprintf("keep last known good: %v", err))
	}
	return nil
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

// seedLastKnownGood keeps the installed output as the last known good
// before it is replaced, when there is none yet (HAProxy started from a
// file rendered before --haproxy-master-socket was set, or by other
// means): no reload of it is due, so it is the file HAProxy loaded, and a
// worker serving proves it good. Without this, the first refused reload
// would leave the refused file installed with nothing to restore. It costs
// one master CLI query, once per output.
func (r *run) seedLastKnownGood(ctx context.Context, st *nodestore.Store) {
	if r.cfg.MasterSocket == "" || r.reloadDueBefore {
		return
	}
	if _, err := os.Stat(r.lkgPath()); !errors.Is(err, os.ErrNotExist) {
		return
	}
	cur, err := render.Current(r.cfg.Output)
	if err != nil || cur == nil {
		return
	}
	mc := master.Client{Addr: r.cfg.MasterSocket, Timeout: r.cfg.ReloadTimeout}
	procs, err := mc.ShowProc(ctx)
	if _, running := procs.Current(); err != nil || !running {
		return
	}
	if err := render.WriteFile(r.lkgPath(), cur); err != nil {
		r.rep.Warnings = append(r.rep.Warnings, fmt.Sprintf("keep last known good: %v", err))
	}
}
