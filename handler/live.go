package handler

// Live updates: with --haproxy-socket, a change that touches only server
// lines inside backends is applied to the running HAProxy through its
// runtime API instead of a reload (handler/haproxy). The rendered file
// stays the truth, what a restart loads, and after every run HAProxy's
// live servers equal the installed file's, or a reload is due.
//
// The order is what makes a new backend answer within milliseconds: the
// change is applied live first, then the file is checked and installed;
// if the check refuses the file, the live change is undone. The reload
// flag is set before the first live command, so a run killed half-way is
// healed by the next one's reload.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/serf-hb/serf-hb/handler/haproxy"
	"github.com/serf-hb/serf-hb/nodestore"
	"github.com/serf-hb/serf-hb/render"
)

// resApplied is the result of a change applied through the runtime API.
const resApplied = "applied"

// liveChange is a change applied to the running HAProxy, to undo if the
// file is refused.
type liveChange struct {
	old, new []byte
	applied  haproxy.Applied
}

func (r *run) runtime() haproxy.Client {
	return haproxy.Client{Addr: r.cfg.HAProxySocket, Timeout: r.cfg.ReloadTimeout}
}

// applyLive applies the difference between the installed output and the
// staged one over the runtime API, when it can: no reload due already, a
// difference in server lines only, HAProxy's live servers equal to the
// installed file's, every command accepted, and the result verified. It
// returns nil when the change was not applied live, saying why in the
// report; a reload then makes HAProxy take the file.
func (r *run) applyLive(ctx context.Context, st *nodestore.Store, staged *render.Pending, out []byte) *liveChange {
	if r.cfg.HAProxySocket == "" {
		return nil
	}
	old, err := render.Current(staged.Target())
	r.prev = old
	if r.reloadDue(st) {
		return nil
	}
	if err == nil && old == nil {
		err = errors.New("no installed output to compare with")
	}
	var plan haproxy.Plan
	if err == nil {
		plan, err = haproxy.Diff(old, out)
	}
	if err != nil {
		r.rep.Live = err.Error()
		return nil
	}
	c := r.runtime()
	if _, err := c.Verify(ctx, old, plan.Backends()); err != nil {
		r.rep.Live = "reload needed: HAProxy does not run the installed file: " + err.Error()
		return nil
	}
	// From the first command on, a reload is due until the change is
	// verified: a run that dies half-way leaves it for the next run.
	if err := r.markReloadDue(st); err != nil {
		r.rep.Live = err.Error()
		return nil
	}
	applied, err := c.Apply(ctx, plan, haproxy.Options{Mode: r.removeMode, DrainTimeout: r.cfg.DrainTimeout})
	if err == nil {
		_, err = c.Verify(ctx, out, plan.Backends())
	}
	if err != nil {
		r.rep.Live = "reload needed: " + err.Error()
		return nil
	}
	r.rep.Live = applied.String()
	return &liveChange{old: old, new: out, applied: applied}
}

// removeMode drains the servers of members that left, and cuts those of
// members that failed.
func (r *run) removeMode(string) haproxy.RemoveMode {
	if r.rep.Event == "member-failed" {
		return haproxy.Cut
	}
	return haproxy.Drain
}

// undoLive takes a live change back after the file was refused, so that
// HAProxy runs the installed file again; when that fails, the reload flag
// stays set and the next run's reload makes it so.
func (r *run) undoLive(ctx context.Context, st *nodestore.Store, lc *liveChange) {
	if lc == nil {
		return
	}
	plan, err := haproxy.Diff(lc.new, lc.old)
	c := r.runtime()
	if err == nil {
		_, err = c.Apply(ctx, plan, haproxy.Options{Mode: func(string) haproxy.RemoveMode { return haproxy.Cut }})
	}
	if err == nil {
		_, err = c.Verify(ctx, lc.old, plan.Backends())
	}
	if err == nil {
		err = r.clearReloadDue(st)
	}
	if err != nil {
		r.rep.Warnings = append(r.rep.Warnings, fmt.Sprintf("undo the live change: %v; a reload is due", err))
		return
	}
	r.rep.Live = "undone: " + r.rep.Live
}

// finishLive completes a verified live change once its file is installed:
// the servers earlier runs left draining are deleted if HAProxy lets them
// go (a live run retries them like any other), no reload is due for it,
// and the file is the last known good.
func (r *run) finishLive(ctx context.Context, st *nodestore.Store, lc *liveChange) error {
	r.finishDrains(ctx, st, lc.new)
	r.rep.Result = resApplied
	if err := render.WriteFile(r.lkgPath(), lc.new); err != nil {
		r.rep.Warnings = append(r.rep.Warnings, fmt.Sprintf("keep last known good: %v", err))
	}
	if len(lc.applied.Pending) > 0 {
		if err := st.SetValue(r.drainKey(), "pending"); err != nil {
			return err
		}
	}
	return r.clearReloadDue(st)
}

// drainKey is the registry setting present while servers an earlier run
// drained wait to be deleted.
func (r *run) drainKey() string { return "draining " + r.reloadFlag() }

// finishDrains deletes the servers earlier runs left draining, once HAProxy
// lets them go. It never fails the run: a server still busy stays pending
// for the next run, or the next reload drops it.
func (r *run) finishDrains(ctx context.Context, st *nodestore.Store, installed []byte) {
	if v, set, _ := st.Value(r.drainKey()); r.cfg.HAProxySocket == "" || !set || v == "" {
		return
	}
	a, err := r.runtime().Finish(ctx, installed)
	if err != nil {
		r.rep.Warnings = append(r.rep.Warnings, fmt.Sprintf("finish drains: %v", err))
		return
	}
	r.rep.Drained = a.String()
	if len(a.Pending) == 0 {
		if err := st.SetValue(r.drainKey(), ""); err != nil {
			r.rep.Warnings = append(r.rep.Warnings, err.Error())
		}
	}
}

// dumpState writes HAProxy's server states to the file the output loads
// them from (server-state-file), right before a reload, so that the new
// worker keeps every server's health and drain state instead of marking
// all UP again. Only the states of servers that both the output and the
// file installed before it define, as they run, are kept
// (haproxy.Client.DumpState says why).
func (r *run) dumpState(ctx context.Context, out []byte) {
	if r.cfg.HAProxySocket == "" {
		return
	}
	path := stateFile(out)
	if path == "" {
		return
	}
	if !filepath.IsAbs(path) {
		path = filepath.Join(filepath.Dir(r.cfg.Output), path)
	}
	if err := r.runtime().DumpState(ctx, path, out, r.prev); err != nil {
		r.rep.Warnings = append(r.rep.Warnings, fmt.Sprintf("dump server states before the reload: %v", err))
	}
}

// statePath is the state file the embedded template names: next to the
// output, absolute, since HAProxy reads it relative to its own directory.
func (r *run) statePath() string { return r.absOutput() + ".state" }

// stateFile returns the server-state-file a config names (joined to its
// server-state-base), or "".
func stateFile(cfg []byte) string {
	var file, base string
	sc := bufio.NewScanner(bytes.NewReader(cfg))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == "server-state-file" {
			file = f[1]
		}
		if len(f) == 2 && f[0] == "server-state-base" {
			base = f[1]
		}
	}
	if file == "" || filepath.IsAbs(file) || base == "" {
		return file
	}
	return filepath.Join(base, file)
}
