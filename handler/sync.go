package handler

// Sync makes the registry equal to the cluster's membership as the local
// Serf agent sees it. Serf hands an event handler edges (a join, a leave),
// never state, and never retries, so a registry drifts whenever an edge is
// lost: the balancer's agent was down while a backend left, a handler run
// failed, a join and a leave were coalesced into the leave of a node never
// seen, or a member only ever arrived as an update. Sync heals all of them
// from the agent's member list.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/serf-hb/serf-hb/handler/serfrpc"
	"github.com/serf-hb/serf-hb/nodestore"
)

// syncEvent is the user event that makes the handler sync the registry:
// `serf event serf-hb-sync`, with serf-hb installed as a handler for user
// events too.
const syncEvent = "serf-hb-sync"

// errAlone is a sync refused because the agent knows no member but itself:
// it has not joined its cluster yet (it just started, or -retry-join has
// not succeeded), and trusting it would empty the registry.
var errAlone = errors.New("it knows no member but itself (has it joined its cluster yet?); registry left as it was")

// SyncOptions tune Sync.
type SyncOptions struct {
	DryRun bool // print the changes a sync would make; touch nothing
}

// Sync makes the registry equal to the cluster's members of the roles
// whose status counts, minus the agent's own node, then renders, checks,
// installs and reloads as an event run does. It prints one line per
// change on stdout: "+ NAME ADDR", "~ NAME ADDR" (address or tags
// changed), "- NAME". With DryRun it prints them and touches nothing: no
// lock, no write, no command.
func Sync(ctx context.Context, cfg Config, opt SyncOptions) error {
	cfg.setIO()
	if err := cfg.validate(); err != nil {
		return err
	}
	if opt.DryRun {
		return syncDryRun(ctx, cfg)
	}
	r := start(cfg, "sync")
	err := r.sync(ctx, r.cfg.RPCTimeout)
	printChanges(r.cfg.Stdout, r.rep.Done)
	return r.finish(err)
}

// sync is a whole sync: the agent's member list is the source of changes
// for the transaction.
func (r *run) sync(ctx context.Context, timeout time.Duration) error {
	if err := r.cfg.validate(); err != nil {
		return err
	}
	r.rep.RPC = r.cfg.RPCAddr
	return r.transact(ctx, func(st *nodestore.Store) error {
		cs, want, err := r.plan(ctx, st, timeout)
		if err != nil {
			return err
		}
		r.rep.Members, r.rep.Rejected = len(cs.want), cs.rejected
		r.rep.Warnings = append(r.rep.Warnings, cs.warnings...)
		r.adoptSelf(cs.self)
		return r.apply(st, want, &r.rep.Done)
	})
}

// plan asks the agent for its members within timeout and compares the
// cluster's state with the registry. The caller holds the lock, so no
// event run can slip in between the answer and the registry's update and
// be undone by an older picture.
func (r *run) plan(ctx context.Context, st *nodestore.Store, timeout time.Duration) (clusterState, changes, error) {
	ms, err := r.fetch(ctx, timeout)
	if err != nil {
		return clusterState{}, changes{}, err
	}
	cs := decideCluster(ms, r.cfg.policy())
	have, _, err := st.List() // stray entries are the render's to report
	if err != nil {
		return cs, changes{}, fmt.Errorf("list registry %s: %v", st.Dir(), err)
	}
	d := compare(have, cs.want, cs.leaving)
	if cs.alone && len(d.remove) > 0 {
		return cs, changes{}, fmt.Errorf("check membership of serf agent %s: %w", r.cfg.RPCAddr, errAlone)
	}
	return cs, d, nil
}

// fetch asks the member source within timeout.
func (r *run) fetch(ctx context.Context, timeout time.Duration) ([]serfrpc.Member, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, timeout, fmt.Errorf("no answer within %v", timeout))
	defer cancel()
	src := r.cfg.Members
	if src == nil && r.cfg.RPCAddr == "" {
		return nil, usageError("--rpc-addr is empty; hint: the agent's -rpc-addr, 127.0.0.1:7373 by default")
	}
	if src == nil {
		src = serfrpc.Client{Addr: r.cfg.RPCAddr, AuthKey: r.cfg.RPCAuth}
	}
	ms, err := src.Members(ctx)
	if err != nil {
		return nil, &agentError{addr: r.cfg.RPCAddr, err: err, untouched: true}
	}
	return ms, nil
}

// agentError is a failed query of the agent.
type agentError struct {
	addr      string
	err       error
	untouched bool // the run changes nothing because of it
}

func (e *agentError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "query serf agent %s: %v", e.addr, e.err)
	if e.untouched {
		b.WriteString("; registry and output left as they were")
	}
	if msg := e.err.Error(); strings.Contains(msg, "Authentication required") || strings.Contains(msg, "Invalid authentication token") {
		b.WriteString("; hint: set --rpc-auth (SERF_RPC_AUTH) to the agent's rpc_auth key")
	} else {
		fmt.Fprintf(&b, "; hint: is a serf agent running with -rpc-addr %s? (--rpc-addr, SERF_RPC_ADDR)", e.addr)
	}
	return b.String()
}

// reconcile is --reconcile: after an event's lines are applied, and before
// the one publish of the run, it syncs the registry with the cluster. It
// never fails the run: the event's own changes stand, and a failure is a
// warning on the summary line.
func (r *run) reconcile(ctx context.Context, st *nodestore.Store) {
	cs, want, err := r.plan(ctx, st, r.cfg.ReconcileTimeout)
	if err == nil {
		r.rep.Warnings = append(r.rep.Warnings, cs.warnings...)
		r.adoptSelf(cs.self)
		err = r.apply(st, want, &r.rep.ReconcileDone)
	}
	r.rep.ReconcileRejected = len(cs.rejected)
	var ae *agentError
	switch {
	case errors.Is(err, errAlone):
		r.rep.Reconcile, r.rep.ReconcileWarn = "skipped", "reconcile: "+err.Error()
	case err != nil:
		if errors.As(err, &ae) {
			ae.untouched = false // the event's own changes are published regardless
		}
		r.rep.Reconcile, r.rep.ReconcileWarn = "failed", "reconcile: "+err.Error()
	case r.rep.ReconcileDone.empty():
		r.rep.Reconcile = "ok"
	default:
		r.rep.Reconcile = "fixed"
	}
}

// adoptSelf gives a sync run outside Serf (the sync command) the agent's
// own name, role and tags as Serf would pass them (SERF_SELF_NAME,
// SERF_SELF_ROLE, SERF_TAG_*), so that a template using self renders the
// same bytes as in an event run, and a sync never reloads for nothing.
func (r *run) adoptSelf(m *serfrpc.Member) {
	if m == nil || r.cfg.Getenv("SERF_SELF_NAME") != "" {
		return
	}
	env := map[string]string{"SERF_SELF_NAME": m.Name, "SERF_SELF_ROLE": m.Tags["role"]}
	for k, v := range m.Tags {
		env["SERF_TAG_"+tagEnvName(k)] = v
	}
	getenv, environ := r.cfg.Getenv, r.cfg.Environ
	r.cfg.Getenv = func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		return getenv(k)
	}
	r.cfg.Environ = func() []string {
		list := environ()
		for k, v := range env {
			list = append(list, k+"="+v)
		}
		return list
	}
}

// tagEnvName is Serf's SERF_TAG_ suffix for a tag: upper-cased, every rune
// outside [A-Z0-9_] turned into "_".
func tagEnvName(tag string) string {
	var b strings.Builder
	for _, c := range strings.ToUpper(tag) {
		if 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' {
			b.WriteRune(c)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// printChanges prints a sync's changes, one line each.
func printChanges(w io.Writer, d changes) {
	for _, n := range d.add {
		fmt.Fprintf(w, "+ %s %s\n", n.Name, n.Addr)
	}
	for _, n := range d.update {
		fmt.Fprintf(w, "~ %s %s\n", n.Name, n.Addr)
	}
	for _, name := range d.remove {
		fmt.Fprintf(w, "- %s\n", name)
	}
}

// syncDryRun prints the changes a sync would make and touches nothing.
func syncDryRun(ctx context.Context, cfg Config) error {
	st, err := openStore(cfg.NodesDir)
	if err != nil {
		return err
	}
	r := &run{cfg: cfg, rep: newReport("sync")}
	cs, d, err := r.plan(ctx, st, cfg.RPCTimeout)
	if err != nil {
		return err
	}
	printChanges(cfg.Stdout, d)
	if d.empty() {
		fmt.Fprintf(cfg.Stderr, "no changes: the registry matches the %d member(s) of role %s\n", len(cs.want), strings.Join(cfg.Roles, ","))
	}
	for _, w := range cs.warnings {
		fmt.Fprintf(cfg.Stderr, "warning: %s\n", w)
	}
	for _, b := range cs.rejected {
		fmt.Fprintf(cfg.Stderr, "rejected: member %s: %v\n", shorten(b.Name), b.Err)
	}
	if len(cs.rejected) > 0 {
		return &ExitError{Code: ExitRejected, Err: fmt.Errorf("%d member(s) rejected; the others would be applied", len(cs.rejected))}
	}
	return nil
}
