package handler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/serf-hb/serf-hb/handler/serfevent"

	"github.com/serf-hb/serf-hb/handler/haproxy"
	"github.com/serf-hb/serf-hb/nodestore"
	"github.com/serf-hb/serf-hb/render"
)

// memberEvents are the Serf events that carry member lines.
var memberEvents = []string{"member-join", "member-leave", "member-failed", "member-update", "member-reap"}

// run is one invocation: its settings, its logger and its report.
type run struct {
	cfg      Config
	log      *slog.Logger
	closeLog func()
	rep      *report
	began    time.Time
	force    bool // render --force: publish past the guard, reload anyway
	// haproxyDeadline ends every runtime API command of the run
	// (--haproxy-timeout), set by the first one (live.go).
	haproxyDeadline time.Time
	// held: what --min-nodes keeps in the output this run; pub: the
	// snapshot of the published nodes to record once installed (nil
	// without --min-nodes) (guard.go).
	held []held
	pub  *pubFile
	// unsettled: the live change this run made (the adds sent ahead of
	// the whole file, then the whole change) that no installed file
	// settles yet: a run that ends before installing one takes it back.
	unsettled *liveChange
	// lkg: the last known good being written beside a live change,
	// renamed into place once its file is installed and verified
	// (reload.go).
	lkg *stagedLKG
	tpl *render.Template // parsed once a run
}

// start begins a run reported under msg.
func start(cfg Config, msg string) *run {
	cfg.setIO()
	log, closeLog := newLogger(cfg.Stderr, cfg.LogFile, cfg.LogFormat, cfg.Getenv("SERF_SELF_NAME"))
	rep := newReport(msg)
	rep.Warnings = append(rep.Warnings, cfg.Warnings...)
	if cfg.DrainTimeout != 0 {
		rep.Warnings = append(rep.Warnings, "--drain-timeout (SERF_HB_DRAIN_TIMEOUT) no longer has an effect: a removal takes the server out of rotation and never waits for its connections; remove it from the handler line")
	}
	return &run{cfg: cfg, log: log, closeLog: closeLog, rep: rep, began: cfg.Now()}
}

// finish completes the report with err, logs it once, and returns the
// run's exit status as a reported error (nil for success).
func (r *run) finish(err error) error {
	defer r.closeLog()
	r.rep.Err = err
	end := r.cfg.Now()
	r.rep.Took = end.Sub(r.began)
	if r.cfg.MetricsFile != "" {
		if err := writeMetrics(r.cfg.MetricsFile, r.rep, float64(end.UnixNano())/1e9); err != nil {
			r.rep.Warnings = append(r.rep.Warnings, err.Error())
		}
	}
	r.rep.log(r.log)
	if _, code := r.rep.status(); code != ExitOK {
		return reported(code)
	}
	return nil
}

// Handle runs one Serf event: the default command.
func Handle(ctx context.Context, cfg Config) error {
	cfg.setIO()
	r := start(cfg, cfg.Getenv("SERF_EVENT"))
	return r.finish(r.event(ctx))
}

// event handles the event named by SERF_EVENT.
func (r *run) event(ctx context.Context) error {
	ev := r.rep.Event
	if !slices.Contains(memberEvents, ev) {
		// Stdin is drained so that Serf's write never fails.
		io.Copy(io.Discard, r.cfg.Stdin)
		return r.otherEvent(ctx, ev)
	}
	if err := r.cfg.validate(); err != nil {
		io.Copy(io.Discard, r.cfg.Stdin)
		r.rep.Msg = "failed"
		return err
	}
	members, bad, readErr := serfevent.ReadMembers(r.cfg.Stdin)
	var over *serfevent.InputLimitError
	if errors.As(readErr, &over) {
		// Input rejected, the rest applied: exit 3, like a bad line, with
		// the result saying what was published (README, "Limits").
		bad = append(bad, &serfevent.LineError{Line: over.Read + 1, Err: over})
		readErr = nil
	}
	d := decideEvent(ev, members, r.cfg.policy())
	r.rep.Lines, r.rep.Ignored = len(members)+len(bad), d.ignored
	r.rep.Warnings = append(r.rep.Warnings, d.warnings...)
	for _, b := range bad {
		r.rep.Rejected = append(r.rep.Rejected, rejection{b.Line, b.Name, b.Err})
	}
	r.rep.Rejected = append(r.rep.Rejected, d.rejected...)
	slices.SortStableFunc(r.rep.Rejected, func(a, b rejection) int { return a.Line - b.Line })
	err := r.transact(ctx, func(st *nodestore.Store) error {
		// Let go of the parsed members once applied: a start-up batch's
		// tags would otherwise stay in memory next to the registry's.
		want := d.want
		d.want = changes{}
		// A joining member's server goes to HAProxy as soon as its node
		// file is in place (worked out while the file is made durable),
		// before the registry directory's fsync: that makes the rename
		// survive a power loss only, which takes HAProxy's runtime state
		// with it.
		adds, err := r.register(st, want, &r.rep.Done, r.planEarly)
		if err == nil {
			r.unsettled = r.applyEarly(ctx, st, adds)
		}
		if err := firstErr(err, syncRegistry(st)); err != nil {
			return err
		}
		if r.cfg.Reconcile {
			r.reconcile(ctx, st) // before the publish: one render, one reload
		}
		return nil
	})
	return errors.Join(err, readErr)
}

// lateHeap is the heap a run may grow to before the garbage collector
// first runs, when it collects late.
const lateHeap = 64 << 20

// lateNodes is the registry size from which a run collects late.
const lateNodes = 500

// collectLate holds the garbage collector back, up to lateHeap, for the
// rest of a run over a big registry (big: lateNodes or more nodes, or an
// installed output of aheadBytes or more, which transact knows as soon as
// it holds the lock, before the reads that would start the collector)
// that handles a few member lines (lines, at most maxAhead): a run is a
// short process that frees its memory by exiting. At the default GOGC
// the collector would start at 4 MB and run several times in a run over
// 1,000 nodes (~10% of its CPU), and more at 10,000. Below lateNodes a
// run allocates little more than those 4 MB, and fresh pages cost more
// than a collection (measured: ~1 ms of CPU a run at 100 nodes); a
// start-up batch keeps the default collector, which bounds its peak
// memory (docs/performance.md); and so does a process whose GOGC or
// GOMEMLIMIT the operator set. Nothing is restored: restoring the default
// at the end would start a collection that the exit makes moot.
func collectLate(big bool, lines int) {
	if !big || lines > maxAhead || os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	debug.SetGCPercent(-1)
	debug.SetMemoryLimit(lateHeap)
}

// otherEvent handles an event without member lines: user events and
// queries touch nothing, except the serf-hb-sync user event.
func (r *run) otherEvent(ctx context.Context, ev string) error {
	switch ev {
	case "user", "query":
		r.rep.Msg, r.rep.Name = "ignored", r.cfg.Getenv("SERF_USER_EVENT")
		if ev == "user" && r.rep.Name == syncEvent {
			r.rep.Msg = "user"
			return r.sync(ctx, r.cfg.ReconcileTimeout)
		}
		return nil
	case "":
		r.rep.Msg = "failed"
		return usageError("SERF_EVENT is not set: serf-hb is run by a serf agent as its event handler; hint: see serf-hb --help for the render, nodes and sync commands")
	}
	r.rep.Msg = "failed"
	return usageError("unknown SERF_EVENT %q; hint: serf-hb handles %s, user and query", ev, strings.Join(memberEvents, ", "))
}

// transact is one run's transaction. Under the registry lock it lets
// update change the registry, lists and renders it, guards against
// emptying it, stages the output, applies it live when it can, has it
// checked, commits it and reloads when that is still due. Each step
// records what it did in the report; the first failure ends it, leaving
// the output as it was, HAProxy running it (a live change made for a file
// never installed is undone), and any due reload marked for the next run.
func (r *run) transact(ctx context.Context, update func(*nodestore.Store) error) (err error) {
	result := resFailed
	defer func() { r.rep.Result = outcome(result, err) }()
	st, err := openStore(r.cfg.NodesDir)
	if err != nil {
		return err
	}
	unlock, err := r.lock(ctx, st)
	if err != nil {
		return err
	}
	defer unlock()
	defer func() {
		// A live change whose file was never installed goes back out.
		r.undoLive(ctx, st, r.unsettled)
		r.unsettled = nil
		r.dropLKG()
	}()
	collectLate(r.outputSize() >= aheadBytes, r.rep.Lines)
	if err := update(st); err != nil {
		return err
	}
	publish, err := r.list(st)
	if err != nil {
		return err
	}
	// The installed output is parsed beside the render, which leaves the
	// second CPU free (beside the registry listing, it took half of one
	// from the stats). The adds sent ahead read only its server names.
	r.parseAhead(st)
	r.readBack(ctx, r.unsettled)
	out, err := r.render(publish)
	if err != nil {
		return err
	}
	staged, err := render.Stage(r.cfg.Output, out)
	if err != nil {
		return err
	}
	defer staged.Cleanup()
	in, err := r.install(ctx, st, staged, out)
	result = in.result
	if err != nil {
		return err
	}
	if err := r.published(st); err != nil {
		return err
	}
	if in.live != nil {
		result, err = resApplied, r.finishLive(ctx, st, in.live)
	} else {
		if !r.reloadDue(st) {
			r.deleteEarlier(ctx, st) // a reload drops them anyway
		}
		var reloaded string
		if reloaded, err = r.reload(ctx, st, out, in.prev); reloaded != "" {
			result = reloaded
		}
	}
	return r.guarded(&result, err)
}

// dropLKG removes the last known good staged beside the change, if any,
// once its goroutine has ended.
func (r *run) dropLKG() {
	r.lkg.cleanup()
	r.warn(r.lkg.seed())
	r.lkg = nil
}

// warn adds err, if any, to the run's warnings.
func (r *run) warn(err error) {
	if err != nil {
		r.rep.Warnings = append(r.rep.Warnings, err.Error())
	}
}

// outcome is the result a run reports: what its last step did, or failed
// when it ended on an error that step did not name.
func outcome(result string, err error) string {
	named := []string{resCheckFailed, resReloadFailed, resRolledBack}
	switch {
	case err == nil, ExitCode(err) == ExitGuarded, slices.Contains(named, result):
		return result
	}
	return resFailed
}

// guarded adds the run's holds to its outcome err: a hold this run began
// is its error when it has no other (exit 7, result guarded when nothing
// else was published), else a warning beside that error.
func (r *run) guarded(result *string, err error) error {
	gerr := r.guardReport()
	switch {
	case gerr == nil:
		return err
	case err != nil:
		r.rep.Warnings = append(r.rep.Warnings, gerr.Error())
		return err
	}
	if *result == resUnchanged {
		*result = resGuarded
	}
	return gerr
}

// install puts a changed output in place: applied live first when it can
// be, then checked (a refusal keeps the refused file, and transact undoes
// the live change), marked for a reload unless it is live already, and
// committed.
// installation is what install did: its result, the change it applied
// live (nil: none), and the output installed before (nil: none, or the
// output did not change).
type installation struct {
	result string
	live   *liveChange
	prev   []byte
}

func (r *run) install(ctx context.Context, st *nodestore.Store, staged *render.Pending, out []byte) (installation, error) {
	if !staged.Changed() {
		return installation{result: resUnchanged}, nil
	}
	// Read before this run marks its own reload due: with none due, the
	// installed file is what HAProxy loaded (seedLastKnownGood).
	dueBefore := r.reloadDueBefore(st)
	installed, err := render.Current(staged.Target())
	if err != nil {
		return installation{}, fmt.Errorf("read %s: %v", staged.Target(), err)
	}
	in := installation{result: resFailed, prev: installed}
	if err := r.checkSocket(installed, out); err != nil {
		return in, err
	}
	if len(out) >= aheadBytes {
		staged.SyncAhead() // beside HAProxy taking the change, or the check
	}
	switch {
	case dueBefore:
	case r.cfg.HAProxySocket != "":
		// The last known good, should HAProxy take this file live, is
		// seeded and written beside the change: finishLive keeps it.
		r.lkg = r.stageLastKnownGood(ctx, installed, out)
	default:
		r.warn(r.seedLastKnownGood(ctx, installed))
	}
	proof := r.fastCheck(installed, out)
	in.live = r.applyLive(ctx, st, installed, out, r.unsettled)
	if in.live != nil {
		r.unsettled = in.live // it holds the adds sent ahead too
	} else {
		// To be reloaded: the reload keeps the last known good once
		// verified, and this one must not race its write.
		r.dropLKG()
	}
	fast := in.live != nil && proof()
	// A failure from here to the commit leaves r.unsettled for transact
	// to take back.
	if err := r.check(ctx, staged, out, fast); err != nil {
		return installation{result: resCheckFailed}, err
	}
	if err := r.markUnchecked(st, fast); err != nil {
		return installation{result: resFailed}, err
	}
	if in.live == nil {
		if err := r.markReloadDue(st); err != nil {
			return in, err
		}
	}
	r.warn(r.lkg.seed()) // seeded before the file it copies is replaced
	res, err := staged.Commit()
	if err != nil {
		return in, err
	}
	r.unsettled = nil // the file is in place: applied live, or to be reloaded
	in.result, r.rep.InPlace = resInstalled, res == render.InstalledInPlace
	return in, nil
}

// apply registers want's changes (register) and makes them durable
// (syncRegistry), failed or not. The caller holds the lock.
func (r *run) apply(st *nodestore.Store, want changes, done *changes) error {
	_, err := r.register(st, want, done, nil)
	return firstErr(err, syncRegistry(st))
}

// syncRegistry makes the registry's renames and removals durable: the
// fsync of its directory.
func syncRegistry(st *nodestore.Store) error {
	if err := st.Sync(); err != nil {
		return fmt.Errorf("sync registry %s: %v", st.Dir(), err)
	}
	return nil
}

// register registers want's puts and unregisters its removes, and records
// in done what actually changed: an identical entry is no update, an
// unknown node no removal. When it returns, the node files are durable
// and in place, and the registry's directory is to be fsynced
// (syncRegistry). done gets the nodes without their tags, which no report
// needs: the registry has them, and a start-up batch's would double the
// run's memory. The caller holds the lock.
//
// plan, when not nil, is called with the members new to the registry
// (ahead) while their node files are fsynced and renamed (StageAll, then
// Commit beside it), and register returns what it gave when every change
// was made: a joining member's server is worked out meanwhile, and sent
// once its node file is in place, so that a run killed after the add
// leaves the member registered.
func (r *run) register(st *nodestore.Store, want changes, done *changes, plan func(*nodestore.Store, []nodestore.Node) *earlyAdds) (adds *earlyAdds, err error) {
	r.rep.Applied = true
	puts := want.puts()
	staged := st.StageAll(puts)
	staging := staged.Results()
	committed := make(chan []nodestore.PutResult, 1)
	go func() { committed <- staged.Commit() }()
	if plan != nil && !slices.ContainsFunc(staging, func(res nodestore.PutResult) bool { return res.Err != nil }) {
		adds = plan(st, ahead(puts, staging))
	}
	for i, res := range <-committed {
		n := puts[i]
		switch {
		case res.Err != nil:
			err = firstErr(err, fmt.Errorf("register node %q: %v", n.Name, res.Err))
		case res.Changed && res.Existed:
			done.update = append(done.update, nodestore.Node{Name: n.Name, Addr: n.Addr, Role: n.Role})
		case res.Changed:
			done.add = append(done.add, nodestore.Node{Name: n.Name, Addr: n.Addr, Role: n.Role})
		}
	}
	if err != nil {
		return nil, err
	}
	for _, name := range want.remove {
		removed, err := st.Remove(name)
		if err != nil {
			return nil, fmt.Errorf("unregister node %q: %v", name, err)
		}
		if removed {
			done.remove = append(done.remove, name)
		}
	}
	return adds, nil
}

// ahead returns the nodes that puts register anew, by their results, each
// as its name's last put gives it, when there are few enough to add ahead
// (maxAhead); nil otherwise.
func ahead(puts []nodestore.Node, res []nodestore.PutResult) []nodestore.Node {
	var nodes []nodestore.Node
	for i, n := range puts {
		if res[i].Err != nil || !res[i].Changed || res[i].Existed {
			continue
		}
		if len(nodes) == maxAhead {
			return nil
		}
		last := len(puts) - 1
		for puts[last].Name != n.Name {
			last--
		}
		nodes = append(nodes, puts[last])
	}
	return nodes
}

// firstErr returns the first non-nil error.
func firstErr(first, next error) error {
	if first != nil {
		return first
	}
	return next
}

// openStore opens the registry, which must exist: creating a missing one
// would turn a registry that failed to mount into an empty config.
func openStore(dir string) (*nodestore.Store, error) {
	fi, err := os.Stat(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("open registry %s: directory does not exist; hint: create it (install -d %s): serf-hb never creates it, so that a registry that failed to mount cannot become an empty config", dir, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("open registry: %v", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("open registry %s: not a directory", dir)
	}
	return nodestore.Open(dir)
}

// lock takes the registry lock within the configured time.
func (r *run) lock(ctx context.Context, st *nodestore.Store) (func(), error) {
	ctx, cancel := context.WithTimeoutCause(ctx, r.cfg.LockTimeout,
		fmt.Errorf("waited %v", r.cfg.LockTimeout))
	defer cancel()
	return st.Lock(ctx)
}

// parseAhead parses a big installed output (aheadBytes) in a goroutine of
// its own, beside other work, when the run may apply its change live: the
// live path's Diff reads it (~8 ms of CPU at 10,000 servers), and the fast
// check its scan of it (~3 ms). A run with a reload due from before it
// applies nothing live.
func (r *run) parseAhead(st *nodestore.Store) {
	if r.cfg.HAProxySocket == "" || r.reloadDueBefore(st) {
		return
	}
	if installed, err := render.Current(r.cfg.Output); err == nil && len(installed) >= aheadBytes {
		fast := r.fastCheckable()
		go func() {
			haproxy.Parse(installed)
			if fast {
				haproxy.ScanAhead(installed) // what the fast check reads it as
			}
		}()
	}
}

// build lists the registry and renders the template over it.
func (r *run) build(st *nodestore.Store) ([]byte, error) {
	publish, err := r.list(st)
	if err != nil {
		return nil, err
	}
	return r.render(publish)
}

// list lists the registry and returns the nodes to publish (the guard
// may hold some back).
func (r *run) list(st *nodestore.Store) ([]nodestore.Node, error) {
	nodes, bad, err := st.List()
	if err != nil {
		return nil, fmt.Errorf("list registry %s: %v", st.Dir(), err)
	}
	collectLate(len(nodes) >= lateNodes, r.rep.Lines)
	publish := r.guard(nodes)
	// An entry that is not a node (a stray README, an editor's web1~) is
	// left out and named, and the run exits 3: one stray file must not
	// stop every membership change from being published.
	r.rep.Nodes, r.rep.Bad = len(nodes), nil
	for _, b := range bad {
		r.rep.Bad = append(r.rep.Bad, b)
	}
	return publish, nil
}

// render renders the template over the nodes to publish.
func (r *run) render(publish []nodestore.Node) ([]byte, error) {
	tpl, err := r.template()
	if err != nil {
		return nil, err
	}
	out, err := tpl.Execute(r.renderData(publish))
	if err != nil {
		return nil, &ExitError{Code: ExitTemplate, Err: err}
	}
	return out, nil
}

// outputSize is the installed output's size in bytes, 0 when unknown.
func (r *run) outputSize() int64 {
	fi, err := os.Stat(r.cfg.Output)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// template parses the configured template, once a run.
func (r *run) template() (*render.Template, error) {
	if r.tpl != nil {
		return r.tpl, nil
	}
	var (
		t   *render.Template
		err error
	)
	if r.cfg.Template == "" {
		t, err = render.Default()
	} else {
		t, err = render.ParseFile(r.cfg.Template)
	}
	if err != nil {
		return nil, &ExitError{Code: ExitTemplate, Err: err}
	}
	r.tpl = t
	return t, nil
}

// renderData converts the registry's nodes into template data.
func (r *run) renderData(nodes []nodestore.Node) render.Data {
	d := render.Data{Nodes: make([]render.Node, len(nodes)), Self: r.self(), Roles: r.cfg.Roles}
	if r.cfg.HAProxySocket != "" {
		d.HAProxy = render.HAProxy{Socket: r.cfg.HAProxySocket, StateFile: r.statePath()}
	}
	for i, n := range nodes {
		d.Nodes[i] = render.Node{Name: n.Name, Addr: n.Addr.String(), Role: n.Role, Tags: n.Tags}
	}
	return d
}

// self describes the node running serf-hb, from Serf's environment.
func (r *run) self() render.Self {
	s := render.Self{
		Name: r.cfg.Getenv("SERF_SELF_NAME"),
		Role: r.cfg.Getenv("SERF_SELF_ROLE"),
		Tags: map[string]string{},
	}
	for _, kv := range r.cfg.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		if t, ok := strings.CutPrefix(k, "SERF_TAG_"); ok && t != "" {
			s.Tags[strings.ToLower(t)] = v
		}
	}
	return s
}

// check runs the check command on the staged file.
func (r *run) check(ctx context.Context, staged *render.Pending, out []byte, fast bool) error {
	var err error
	if bad := haproxy.ForeignBinds(out); r.cfg.MasterSocket != "" && len(bad) > 0 {
		err = fmt.Errorf("%s (HAProxy would pause its listeners for ~2 s trying it, then refuse the reload)", strings.Join(bad, "; "))
	}
	argv, aerr := r.cfg.checkArgv(staged.Name())
	if err == nil && argv != nil && !fast {
		err = runCommand(ctx, argv, r.cfg.CheckTimeout)
	}
	if err == nil || aerr != nil {
		return firstErr(aerr, err)
	}
	kept := "refused file kept as " + r.rejectedPath()
	if kerr := staged.Keep(r.rejectedPath()); kerr != nil {
		kept = kerr.Error()
	}
	return &ExitError{Code: ExitCheck, Err: fmt.Errorf("check %s: %v; %s left as it was, no reload; %s", r.cfg.Output, err, r.cfg.Output, kept)}
}

// reloadFlag is the registry flag set while this output has been
// installed and not reloaded yet: a run that dies or fails between install
// and reload leaves it behind, and the next run reloads even if its render
// is unchanged. It names the output, so that two outputs rendered from one
// registry never cancel each other's due reload.
func (r *run) reloadFlag() string { return "reload-pending " + r.absOutput() }

// absOutput is the output's absolute path, which names it in the
// registry's flags whatever directory a run starts in.
func (r *run) absOutput() string {
	out, err := filepath.Abs(r.cfg.Output)
	if err != nil {
		return r.cfg.Output
	}
	return out
}

// markReloadDue sets the reload flag before the output is replaced, so
// that a run dying right after the rename cannot leave it unreloaded.
func (r *run) markReloadDue(st *nodestore.Store) error {
	if r.cfg.Reload == "" && r.cfg.MasterSocket == "" {
		return nil // nothing reloads this output
	}
	if err := st.SetFlag(r.reloadFlag(), true); err != nil {
		return fmt.Errorf("mark reload due: %v", err)
	}
	return nil
}
