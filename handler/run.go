package handler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/serf-hb/serf-hb/nodestore"
	"github.com/serf-hb/serf-hb/render"
)

// reloadPending is the registry flag set while an installed output has not
// been reloaded yet: a run that dies or fails between install and reload
// leaves it behind, and the next run reloads even if its render is
// unchanged.
const reloadPending = "reload-pending"

// Outcome values for the summary log line.
const (
	outUnchanged    = "unchanged"
	outInstalled    = "installed"
	outReloaded     = "reloaded"
	outCheckFailed  = "check-failed"
	outReloadFailed = "reload-failed"
	outFailed       = "failed"
)

// changes is what a run does, or would do, to the registry.
type changes struct {
	add, update []nodestore.Node
	remove      []string
}

func (c changes) empty() bool { return len(c.add)+len(c.update)+len(c.remove) == 0 }

// apply registers puts and unregisters removes, and returns what actually
// changed: an identical entry is no update, an unknown node no removal. The
// puts run together (nodestore.PutAll); on error it returns the first
// error, with every change that was made. Either way the changes made are
// fsynced before it returns. The caller holds the lock.
func apply(st *nodestore.Store, puts []nodestore.Node, removes []string) (done changes, err error) {
	defer func() {
		if serr := st.Sync(); serr != nil && err == nil {
			err = fmt.Errorf("sync registry: %v", serr)
		}
	}()
	for i, r := range st.PutAll(puts) {
		n := puts[i]
		switch {
		case r.Err != nil:
			if err == nil {
				err = fmt.Errorf("register node %q: %v", n.Name, r.Err)
			}
		case r.Changed && r.Existed:
			done.update = append(done.update, n)
		case r.Changed:
			done.add = append(done.add, n)
		}
	}
	if err != nil {
		return done, err
	}
	for _, name := range removes {
		removed, err := st.Remove(name)
		if err != nil {
			return done, fmt.Errorf("unregister node %q: %v", name, err)
		}
		if removed {
			done.remove = append(done.remove, name)
		}
	}
	return done, nil
}

// addChanges puts a run's changes on the summary line, under prefix.
func (r *run) addChanges(prefix string, d changes) {
	nodeNames := func(ns []nodestore.Node) string {
		list := make([]string, len(ns))
		for i, n := range ns {
			list[i] = n.Name
		}
		return names(list)
	}
	r.add(prefix+"added", nodeNames(d.add), prefix+"updated", nodeNames(d.update), prefix+"removed", names(d.remove))
}

// run is the state of one invocation.
type run struct {
	cfg   Config
	log   *slog.Logger
	attrs []any // summary line attributes, in order
	start time.Time
}

func newRun(cfg Config) (*run, func(), error) {
	cfg.setDefaults()
	log, closeLog, err := newLogger(cfg.Stderr, cfg.LogFile)
	if err != nil {
		return nil, nil, &ExitError{Code: ExitUsage, Err: err}
	}
	return &run{cfg: cfg, log: log, start: cfg.Now()}, closeLog, nil
}

// finish writes the run's summary line, the cause of any failure last, and
// returns err marked as logged.
func (r *run) finish(msg string, err error) error {
	attrs := append(r.attrs, "took", r.cfg.Now().Sub(r.start).Round(time.Microsecond).String())
	if err != nil {
		attrs = append(attrs, "err", err.Error())
	}
	r.log.Log(context.Background(), logAt(r.log, err), msg, attrs...)
	if err == nil {
		return nil
	}
	return &ExitError{Code: exitCode(err), Err: err, Logged: true}
}

func (r *run) add(attrs ...any) { r.attrs = append(r.attrs, attrs...) }

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

// loadTemplate parses the configured template.
func (r *run) loadTemplate() (*render.Template, error) {
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
	return t, nil
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

// renderData converts the registry's nodes into template data.
func (r *run) renderData(nodes []nodestore.Node) render.Data {
	d := render.Data{Nodes: make([]render.Node, len(nodes)), Self: r.self(), Role: r.cfg.Role}
	for i, n := range nodes {
		d.Nodes[i] = render.Node{Name: n.Name, Addr: n.Addr.String(), Role: n.Role, Tags: n.Tags}
	}
	return d
}

// build lists the registry and renders the template over it.
func (r *run) build(st *nodestore.Store) ([]byte, int, error) {
	nodes, bad, err := st.List()
	for _, b := range bad { // TODO(lead): bad entries fail the run, as before List returned them apart
		err = errors.Join(err, b)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("list registry: %v", err)
	}
	tpl, err := r.loadTemplate()
	if err != nil {
		return nil, len(nodes), err
	}
	out, err := tpl.Execute(r.renderData(nodes))
	if err != nil {
		return nil, len(nodes), &ExitError{Code: ExitTemplate, Err: err}
	}
	return out, len(nodes), nil
}

// publish renders the registry into the output, has the staged file
// checked, installs it and reloads. The caller holds the lock. It returns
// the outcome for the log line.
func (r *run) publish(ctx context.Context, st *nodestore.Store) (string, error) {
	out, n, err := r.build(st)
	r.add("nodes", n)
	if err != nil {
		return outFailed, err
	}
	reload, _ := r.cfg.reloadArgv()
	pending := st.Flag(reloadPending)
	// Install calls check only when the content changed, with the staged
	// file, before the rename: where the reload is marked as due, so that
	// a run dying right after the rename cannot leave the new file
	// unreloaded, and without reading the output a second time.
	var flagErr error
	check := func(staged string) error {
		if reload != nil && !pending {
			if flagErr = st.SetFlag(reloadPending, true); flagErr != nil {
				return flagErr
			}
			pending = true
		}
		argv, err := r.cfg.checkArgv(staged)
		if err != nil || argv == nil {
			return err
		}
		if err := runCommand(ctx, argv, r.cfg.CheckTimeout); err != nil {
			return fmt.Errorf("check %s: %v", r.cfg.Output, err)
		}
		return nil
	}
	res, err := render.Install(r.cfg.Output, out, check)
	var ce *render.CheckError
	switch {
	case flagErr != nil:
		return outFailed, fmt.Errorf("mark reload due: %v", flagErr)
	// On failure the reload flag, if this run set it, stays: it cannot tell
	// who set it, and keeping it costs at most one needless reload of the
	// current, valid file, where dropping it could lose a due reload.
	case errors.As(err, &ce):
		return outCheckFailed, &ExitError{Code: ExitCheck, Err: fmt.Errorf("%v; %s left as it was, no reload", ce.Err, r.cfg.Output)}
	case err != nil:
		return outFailed, err
	}
	outcome := outInstalled
	if res == render.Unchanged {
		outcome = outUnchanged
	}
	if res == render.InstalledInPlace {
		r.add("install", "in-place")
	}
	if reload == nil || !pending {
		return outcome, nil
	}
	if err := runCommand(ctx, reload, r.cfg.ReloadTimeout); err != nil {
		return outReloadFailed, &ExitError{Code: ExitReload, Err: fmt.Errorf("reload: %v; it is retried on the next run", err)}
	}
	if err := st.SetFlag(reloadPending, false); err != nil {
		return outReloaded, fmt.Errorf("clear reload flag: %v", err)
	}
	return outReloaded, nil
}

// Handle runs one Serf event: the default command.
func Handle(ctx context.Context, cfg Config) error {
	r, closeLog, err := newRun(cfg)
	if err != nil {
		return err
	}
	defer closeLog()
	ev := r.cfg.Getenv("SERF_EVENT")
	r.add("event", ev)
	switch ev {
	case "user", "query":
		// Not ours, except the serf-hb-sync user event: nothing is
		// touched. Stdin is drained so Serf's write never fails.
		io.Copy(io.Discard, r.cfg.Stdin)
		name := r.cfg.Getenv("SERF_USER_EVENT")
		if name != "" {
			r.add("name", name)
		}
		if ev == "user" && name == SyncEvent {
			return r.syncEvent(ctx)
		}
		return r.finish("ignored", nil)
	case "member-join", "member-update", "member-leave", "member-failed", "member-reap":
	case "":
		io.Copy(io.Discard, r.cfg.Stdin)
		return r.finish("failed", usageError("SERF_EVENT is not set: serf-hb is run by a serf agent as its event handler; hint: see serf-hb --help for the render, nodes and sync commands"))
	default:
		io.Copy(io.Discard, r.cfg.Stdin)
		return r.finish("failed", usageError("unknown SERF_EVENT %q", ev))
	}
	if err := r.cfg.validate(); err != nil {
		io.Copy(io.Discard, r.cfg.Stdin)
		return r.finish("failed", err)
	}
	if err := r.cfg.validateStatuses(); err != nil {
		io.Copy(io.Discard, r.cfg.Stdin)
		return r.finish("failed", err)
	}
	members, bad, readErr := ReadMembers(r.cfg.Stdin)
	outcome, rejected, err := r.handleMembers(ctx, ev, members, bad)
	if err == nil {
		err = readErr
	}
	if err == nil && rejected > 0 {
		err = &ExitError{Code: ExitRejected, Err: fmt.Errorf("%d line(s) rejected; the others were applied", rejected)}
	}
	r.add("result", outcome)
	return r.finish(ev, err)
}

// handleMembers applies one event's members and publishes the result. It
// returns the outcome and the number of rejected lines.
func (r *run) handleMembers(ctx context.Context, ev string, members []Member, bad []*LineError) (string, int, error) {
	lines := len(members) + len(bad)
	self := r.cfg.Getenv("SERF_SELF_NAME")
	upsert := ev == "member-join" || ev == "member-update"
	var (
		puts    []nodestore.Node
		removes []string
		ignored int
	)
	reject := func(m Member, err error) {
		bad = append(bad, &LineError{Line: m.Line, Name: m.Name, Err: err})
	}
	for _, m := range members {
		ours := m.Role == r.cfg.Role
		switch {
		case m.Name == self:
			ignored++
		case ev == "member-join" && !ours:
			ignored++ // another role joining
		case nodestore.ValidName(m.Name) != nil:
			// A name the registry can never hold: an error for a member
			// of our role, nothing for others (they are never registered).
			if ours {
				reject(m, nodestore.ValidName(m.Name))
			} else {
				ignored++
			}
		case upsert && ours:
			puts = append(puts, nodestore.Node{Name: m.Name, Addr: m.Addr, Role: m.Role, Tags: m.Tags})
		case ev == "member-failed" && ours && r.cfg.counts(StatusFailed):
			// --status counts failed members in: the node stays until it
			// is reaped or leaves, and HAProxy's checks decide meanwhile.
			ignored++
		default:
			// A leave, failure or reap of any role, or an update that
			// moved a node out of the role: the node goes if it is here.
			removes = append(removes, m.Name)
		}
	}
	sort.Slice(bad, func(i, j int) bool { return bad[i].Line < bad[j].Line })
	for _, b := range bad {
		if b.Name == "" {
			r.log.Warn("rejected", "line", b.Line, "err", b.Err.Error())
		} else {
			r.log.Warn("rejected", "line", b.Line, "node", shorten(b.Name), "err", b.Err.Error())
		}
	}
	r.add("lines", lines, "ignored", ignored)
	if len(bad) > 0 {
		r.add("rejected", len(bad))
	}

	st, err := openStore(r.cfg.NodesDir)
	if err != nil {
		return outFailed, len(bad), err
	}
	unlock, err := r.lock(ctx, st)
	if err != nil {
		return outFailed, len(bad), err
	}
	defer unlock()

	done, err := apply(st, puts, removes)
	if err != nil {
		return outFailed, len(bad), err
	}
	r.addChanges("", done)
	if r.cfg.Reconcile {
		r.reconcile(ctx, st) // before the publish: one render, one reload
	}
	outcome, err := r.publish(ctx, st)
	return outcome, len(bad), err
}
