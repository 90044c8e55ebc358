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
// healed by the next one's reload. A joining member's server goes first
// of all, as soon as its node file is in place, before the registry's
// directory fsync, its listing and the whole file's render (planEarly,
// applyEarly): the template rendered over that member alone gives its
// line, and the whole file must agree with it, or the run reloads.
//
// A removal never waits: the server is retired (in maintenance, its
// streams finishing) and deleted only once HAProxy says it is removable,
// by this run or a later one; HAProxy before 2.9 cannot say, and keeps it
// until its next reload (haproxy/apply.go says why). The registry records
// the retired servers with a signature of their definition, so that a
// member that comes back revives its server in place, streams untouched,
// when it is defined as before.
//
// Every runtime API command of a run shares one deadline,
// --haproxy-timeout: a stuck HAProxy costs a run that long at most, the
// change is then owed (the reload flag stays set, and the run reloads),
// and later runs skip the runtime API until a reload or a command works
// again.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

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
	// ahead: the adds sent before the whole file was rendered (applyEarly),
	// and aheadErr what stopped them; new is nil until that file has
	// settled them.
	ahead    haproxy.Plan
	aheadErr error
	// read: the backends of the adds sent ahead, read back from HAProxy
	// while the run renders (readBack): applyLive's Verify compares the
	// whole file with it when the file changes nothing else.
	read *haproxy.Reading
}

// maxAhead bounds the members whose servers a run adds ahead of the whole
// file: a start-up batch takes the ordinary way.
const maxAhead = 8

// earlyAdds are the adds of a run's joining members that applyEarly sends
// ahead of the whole file, and the installed file they were worked out
// from.
type earlyAdds struct {
	installed []byte
	plan      haproxy.Plan
}

// planEarly works out the servers of the members this event registers
// (added), to add before the whole file is rendered: the template
// rendered over those members alone names their server lines
// (haproxy.Adds takes only those at a member's address, new to a backend
// the installed file has). It reads the installed file, the template and
// the registry's flags, nothing of the node files: register calls it
// while they are made durable. nil: nothing to add ahead.
func (r *run) planEarly(st *nodestore.Store, added []nodestore.Node) *earlyAdds {
	if r.cfg.HAProxySocket == "" || len(added) == 0 || len(added) > maxAhead || r.reloadDue(st) || r.stuck(st) != "" {
		return nil
	}
	installed, err := render.Current(r.cfg.Output)
	if err != nil || installed == nil {
		return nil
	}
	tpl, err := r.template()
	if err != nil {
		return nil // the whole render reports it
	}
	partial, err := tpl.Execute(r.renderData(added))
	if err != nil {
		return nil
	}
	addrs := map[netip.Addr]bool{}
	for _, n := range added {
		addrs[n.Addr] = true
	}
	plan := haproxy.Adds(installed, partial, func(s haproxy.Server) bool { return addrs[s.IP] })
	if len(plan) == 0 {
		return nil
	}
	return &earlyAdds{installed: installed, plan: plan}
}

// applyEarly sends the adds planEarly worked out (nil: none), once their
// members' node files are in place. The reload flag is set first, as for
// any live change, and applyLive later verifies HAProxy against the whole
// file, which must define them the same way (haproxy.Settle), or the run
// reloads; a file refused by the check, or a run that fails before
// installing one, takes them back (undoLive). It returns nil when nothing
// was sent.
func (r *run) applyEarly(ctx context.Context, st *nodestore.Store, adds *earlyAdds) *liveChange {
	if adds == nil || r.markReloadDue(st) != nil {
		return nil
	}
	ctx, cancel := r.runtimeCtx(ctx)
	defer cancel()
	applied, err := r.runtime().Apply(ctx, adds.plan, haproxy.Options{Delete: true, Revive: r.reviver(st)})
	if err != nil {
		r.noteStuck(st, err)
		r.rep.Live = "reload needed: " + runtimeProblem(err)
	}
	return &liveChange{old: adds.installed, applied: applied, ahead: adds.plan, aheadErr: err}
}

// readBack starts reading back the backends of the adds sent ahead (lc,
// nil: none), for applyLive's Verify, beside the render. Not earlier: a
// backend of 10,000 servers costs HAProxy 15-20 ms to dump, which right
// after the adds would delay the new servers' first requests.
func (r *run) readBack(ctx context.Context, lc *liveChange) {
	if lc == nil || lc.aheadErr != nil || lc.read != nil || r.haproxyDeadline.IsZero() {
		return
	}
	lc.read = r.runtime().ReadAhead(ctx, r.haproxyDeadline, lc.ahead.Backends())
}

// runtimeProblem says what a runtime API error means for the live path.
func runtimeProblem(err error) string {
	if errors.Is(err, haproxy.ErrTimeout) {
		return "HAProxy's runtime API did not answer in time: " + err.Error()
	}
	return err.Error()
}

// reviver says which retired servers a returning member's server revives:
// those whose definition is the one they were retired with.
func (r *run) reviver(st *nodestore.Store) func(string, haproxy.Server) bool {
	retired := r.retired(st)
	return func(backend string, s haproxy.Server) bool {
		sig, ok := retired[backend+"/"+s.Name]
		return ok && sig == signature(s)
	}
}

func (r *run) runtime() haproxy.Client {
	return haproxy.Client{Addr: r.cfg.HAProxySocket, Timeout: r.haproxyTimeout()}
}

// defaultHAProxyTimeout is --haproxy-timeout's default, for a Config that
// leaves it 0.
const defaultHAProxyTimeout = time.Second

func (r *run) haproxyTimeout() time.Duration {
	if r.cfg.HAProxyTimeout <= 0 {
		return defaultHAProxyTimeout
	}
	return r.cfg.HAProxyTimeout
}

// runtimeCtx bounds every runtime API command of the run together by
// --haproxy-timeout, from the run's first command on.
func (r *run) runtimeCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if r.haproxyDeadline.IsZero() {
		r.haproxyDeadline = time.Now().Add(r.haproxyTimeout())
	}
	return context.WithDeadline(ctx, r.haproxyDeadline)
}

// applyLive applies the difference between the installed output and the
// staged one over the runtime API, when it can: no reload due already, a
// difference in server lines only, every command accepted, and HAProxy's
// servers in the backends touched then verified equal to the file's. It
// returns nil when the change was not applied live, saying why in the
// report; a reload then makes HAProxy take the file. The adds this run
// sent ahead (early) are part of the change: the file must define them as
// they were sent, and HAProxy is verified against it.
func (r *run) applyLive(ctx context.Context, st *nodestore.Store, old, out []byte, early *liveChange) *liveChange {
	var ahead *haproxy.Reading
	if early != nil {
		defer early.read.Stop()
		ahead = early.read
	}
	if early != nil && early.aheadErr != nil {
		return nil // the report says why; the run reloads
	}
	if r.cfg.HAProxySocket == "" || (early == nil && r.reloadDue(st)) {
		return nil
	}
	var err error
	if old == nil {
		err = errors.New("no installed output to compare with")
	}
	var plan haproxy.Plan
	if err == nil {
		plan, err = haproxy.Diff(old, out)
	}
	verify := plan.Backends()
	if err == nil && early != nil {
		verify = slices.Concat(verify, early.ahead.Backends())
		plan, err = haproxy.Settle(plan, early.ahead)
	}
	if err != nil {
		r.rep.Live = err.Error()
		return nil
	}
	c := r.runtime()
	ctx, cancel := r.runtimeCtx(ctx)
	defer cancel()
	if early == nil {
		if stuck := r.stuck(st); stuck != "" {
			r.rep.Live = "reload needed: " + stuck
			return nil
		}
		// From the first command on, a reload is due until the change is
		// verified: a run that dies half-way leaves it for the next run.
		if err := r.markReloadDue(st); err != nil {
			r.rep.Live = err.Error()
			return nil
		}
	}
	// HAProxy is not compared with the installed file first: the Verify
	// after the change reads the same backends, and any difference there,
	// one this run made or one it found, reloads. (The read before cost a
	// whole backend's state, 15 ms at 10,000 servers, and told nothing the
	// read after does not.)
	var applied haproxy.Applied
	if len(plan) > 0 {
		applied, err = c.Apply(ctx, plan, haproxy.Options{Delete: true, Revive: r.reviver(st)})
		ahead = nil // read before this change
	}
	if early != nil {
		applied.Added = slices.Concat(early.applied.Added, applied.Added)
		applied.Revived = slices.Concat(early.applied.Revived, applied.Revived)
	}
	if err == nil {
		_, err = c.Verify(ctx, out, slices.Compact(slices.Sorted(slices.Values(verify))), ahead)
	}
	if err != nil {
		r.noteStuck(st, err)
		r.rep.Live = "reload needed: " + runtimeProblem(err)
		return nil
	}
	r.rep.Live = applied.String()
	if early != nil {
		r.rep.Live += "; adds sent ahead of the whole file"
	}
	return &liveChange{old: old, new: out, applied: applied}
}

// undoLive takes a live change back after the file was refused, so that
// HAProxy runs the installed file again; when that fails, the reload flag
// stays set and the next run's reload makes it so.
func (r *run) undoLive(ctx context.Context, st *nodestore.Store, lc *liveChange) {
	if lc == nil {
		return
	}
	lc.read.Stop()
	plan, err := lc.ahead.Undo(), error(nil)
	if lc.new != nil {
		plan, err = haproxy.Diff(lc.new, lc.old)
	}
	c := r.runtime()
	ctx, cancel := r.runtimeCtx(ctx)
	defer cancel()
	if err == nil {
		// What this run added goes back into maintenance; what it retired
		// comes back as it was.
		revive := func(string, haproxy.Server) bool { return true }
		_, err = c.Apply(ctx, plan, haproxy.Options{Revive: revive})
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
	r.rep.Live = "undone: " + cmp.Or(r.rep.Live, lc.applied.String())
}

// finishLive completes a verified live change once its file is installed:
// the registry records the servers it retired, those retired earlier are
// deleted where HAProxy now allows, no reload is due for it, and the file
// is the last known good.
func (r *run) finishLive(ctx context.Context, st *nodestore.Store, lc *liveChange) error {
	retired := r.retired(st)
	for _, bs := range slices.Concat(lc.applied.Added, lc.applied.Revived, lc.applied.Removed) {
		delete(retired, bs)
	}
	earlier := slices.Sorted(maps.Keys(retired))
	if len(lc.applied.Retired) > 0 {
		old := haproxy.Parse(lc.old) // the run's parse, kept
		for _, bs := range lc.applied.Retired {
			backend, name, _ := strings.Cut(bs, "/")
			s, _ := old.Server(backend, name)
			retired[bs] = signature(s)
		}
	}
	r.deleteRetired(ctx, st, retired, earlier)
	if err := r.setRetired(st, retired); err != nil {
		return err
	}
	// The last known good goes in place before the reload flag is
	// cleared: a run killed in between leaves a reload due, whose
	// refusal restores the file this run installed.
	if err := r.lkg.commit(); err != nil {
		r.rep.Warnings = append(r.rep.Warnings, fmt.Sprintf("keep last known good: %v", err))
	}
	return r.clearReloadDue(st)
}

// maxDeletes bounds the retired servers one run tries to delete, so that
// a run costs what its own change costs, not what a backlog does.
const maxDeletes = 16

// deleteRetired deletes, from candidates, the retired servers HAProxy now
// says are removable, at most maxDeletes, and drops them from retired. It
// never fails the run: one still busy stays retired for a later run, and
// the next reload drops them all.
func (r *run) deleteRetired(ctx context.Context, st *nodestore.Store, retired map[string]string, candidates []string) {
	if len(candidates) == 0 || r.stuck(st) != "" {
		return
	}
	ctx, cancel := r.runtimeCtx(ctx)
	defer cancel()
	a, err := r.runtime().Delete(ctx, candidates[:min(len(candidates), maxDeletes)])
	for _, bs := range a.Removed {
		delete(retired, bs)
	}
	if len(a.Removed) > 0 {
		r.rep.Deleted = strings.Join(a.Removed, " ")
	}
	if err != nil {
		// Not noted as stuck: this step comes last, on what a slow but
		// working change left of the run's --haproxy-timeout.
		r.rep.Warnings = append(r.rep.Warnings, fmt.Sprintf("delete retired servers: %v", err))
	}
}

// retiredKey is the registry setting that lists the servers live removals
// retired and HAProxy still holds, in maintenance, each as
// "backend/server=SIGNATURE".
func (r *run) retiredKey() string { return "retired " + r.absOutput() }

// legacyDrainKey is where versions before retirement kept "pending" while
// drained servers waited for deletion; it is dropped on the first run.
func (r *run) legacyDrainKey() string { return "draining " + r.reloadFlag() }

// retired reads the retired servers and their signatures. A value that
// does not parse reads as none: their servers are then never revived, only
// deleted or dropped by a reload.
func (r *run) retired(st *nodestore.Store) map[string]string {
	m := map[string]string{}
	v, _, _ := st.Value(r.retiredKey())
	for _, f := range strings.Fields(v) {
		if bs, sig, ok := strings.Cut(f, "="); ok {
			m[bs] = sig
		}
	}
	return m
}

// setRetired records the retired servers; none removes the setting.
func (r *run) setRetired(st *nodestore.Store, retired map[string]string) error {
	var b strings.Builder
	for _, bs := range slices.Sorted(maps.Keys(retired)) {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(bs + "=" + retired[bs])
	}
	if err := st.SetValue(r.retiredKey(), b.String()); err != nil {
		return fmt.Errorf("record retired servers: %v", err)
	}
	return st.SetValue(r.legacyDrainKey(), "")
}

// signature names a server's definition but for its address and weight,
// which a revival sets: a retired server is revived only when its member
// comes back defined as before.
func signature(s haproxy.Server) string {
	h := fnv.New64a()
	fmt.Fprintf(h, "%t %q", s.Check, s.Keywords)
	return strconv.FormatUint(h.Sum64(), 36)
}

// stuckKey is the registry setting naming when a run last found HAProxy's
// runtime API out of time (unix seconds): later runs skip the runtime API
// for stuckFor, so that a stuck HAProxy costs one run --haproxy-timeout,
// not every run; a reload or a later command that works clears it.
func (r *run) stuckKey() string { return "haproxy-stuck " + r.absOutput() }

const stuckFor = 30 * time.Second

// stuck says why the runtime API is skipped, or "".
func (r *run) stuck(st *nodestore.Store) string {
	v, set, _ := st.Value(r.stuckKey())
	sec, err := strconv.ParseInt(v, 10, 64)
	if !set || err != nil {
		return ""
	}
	since := r.cfg.Now().Sub(time.Unix(sec, 0))
	if since < 0 || since >= stuckFor {
		return ""
	}
	return fmt.Sprintf("HAProxy's runtime API did not answer within --haproxy-timeout %v %v ago; it is skipped for %v after that, or until a reload", r.haproxyTimeout(), since.Round(time.Second), stuckFor)
}

// noteStuck records err's time when it is the runtime API running out of
// time.
func (r *run) noteStuck(st *nodestore.Store, err error) {
	if !errors.Is(err, haproxy.ErrTimeout) {
		return
	}
	if serr := st.SetValue(r.stuckKey(), strconv.FormatInt(r.cfg.Now().Unix(), 10)); serr != nil {
		r.rep.Warnings = append(r.rep.Warnings, serr.Error())
	}
}

// deleteEarlier deletes the servers earlier runs retired, where HAProxy now
// allows, when the run changes nothing live itself.
func (r *run) deleteEarlier(ctx context.Context, st *nodestore.Store) {
	retired := r.retired(st)
	if r.cfg.HAProxySocket == "" || len(retired) == 0 {
		return
	}
	r.deleteRetired(ctx, st, retired, slices.Sorted(maps.Keys(retired)))
	if err := r.setRetired(st, retired); err != nil {
		r.rep.Warnings = append(r.rep.Warnings, err.Error())
	}
}

// reloaded forgets what the worker a reload replaced held: its retired
// servers, and that it was stuck.
func (r *run) reloaded(st *nodestore.Store) {
	for _, k := range []string{r.retiredKey(), r.legacyDrainKey(), r.stuckKey()} {
		if err := st.SetValue(k, ""); err != nil {
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
func (r *run) dumpState(ctx context.Context, st *nodestore.Store, out, prev []byte) {
	if r.cfg.HAProxySocket == "" {
		return
	}
	path := haproxy.StateFile(out)
	if path == "" {
		return
	}
	if !filepath.IsAbs(path) {
		path = filepath.Join(filepath.Dir(r.cfg.Output), path)
	}
	if stuck := r.stuck(st); stuck != "" {
		r.rep.Warnings = append(r.rep.Warnings, "server states not dumped before the reload: "+stuck)
		return
	}
	ctx, cancel := r.runtimeCtx(ctx)
	defer cancel()
	if err := r.runtime().DumpState(ctx, path, out, prev); err != nil {
		r.noteStuck(st, err)
		r.rep.Warnings = append(r.rep.Warnings, fmt.Sprintf("dump server states before the reload: %v", err))
	}
}

// statePath is the state file the embedded template names: next to the
// output, absolute, since HAProxy reads it relative to its own directory.
func (r *run) statePath() string { return r.absOutput() + ".state" }
