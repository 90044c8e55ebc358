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
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/serf-hb/serf-hb/nodestore"
)

// SyncEvent is the user event that makes the handler sync the registry:
// `serf event serf-hb-sync`, with serf-hb installed as a handler for user
// events too.
const SyncEvent = "serf-hb-sync"

// DefaultRPCAddr is the Serf agent's default RPC address.
const DefaultRPCAddr = "127.0.0.1:7373"

const (
	// defaultRPCTimeout bounds a sync run's query of the agent, which holds
	// the registry lock (and so may hold up an event run waiting for it).
	defaultRPCTimeout = 2 * time.Second
	// defaultReconcileTimeout bounds the query made inside Serf's event loop
	// (--reconcile, the serf-hb-sync user event): the agent answers in a
	// few ms, and it cannot answer at all while it is blocked delivering an
	// event to the very handler that is asking (Serf holds its member lock
	// while it hands events on), so waiting longer only holds the loop.
	defaultReconcileTimeout = 200 * time.Millisecond
)

// Member statuses as Serf reports them.
const (
	StatusAlive   = "alive"
	StatusLeaving = "leaving"
	StatusLeft    = "left"
	StatusFailed  = "failed"
)

// ClusterMember is one member of the cluster as the local agent reports it.
type ClusterMember struct {
	Name   string
	Addr   netip.Addr
	Tags   map[string]string // every tag, "role" included
	Status string            // StatusAlive, StatusLeaving, StatusLeft or StatusFailed
	Self   bool              // the agent that answered
}

// MemberSource lists the cluster's members.
type MemberSource interface {
	Members(ctx context.Context) ([]ClusterMember, error)
}

// SyncConfig is what sync, --reconcile and the serf-hb-sync user event need
// beyond Config: how to reach the agent and which members count.
type SyncConfig struct {
	RPCAddr    string        // the agent's RPC address; "" means DefaultRPCAddr
	RPCAuth    string        // the agent's RPC auth key; "" means none
	RPCTimeout time.Duration // bound on a sync command's query

	// Reconcile makes every member event run sync too, within
	// ReconcileTimeout, before it publishes.
	Reconcile        bool
	ReconcileTimeout time.Duration

	// Statuses are the member statuses that keep a node registered;
	// empty means alive only. StatusLeft never counts.
	Statuses []string

	// Members replaces the agent as the source of members (tests).
	Members MemberSource
}

// validate checks the sync settings.
func (s *SyncConfig) validate() error {
	if s.RPCAddr == "" && s.Members == nil {
		return usageError("--rpc-addr is empty; hint: the agent's -rpc-addr, %s by default", DefaultRPCAddr)
	}
	return s.validateStatuses()
}

// validateStatuses checks --status, which member events use too.
func (s *SyncConfig) validateStatuses() error {
	alive := len(s.Statuses) == 0
	for _, st := range s.Statuses {
		switch st {
		case StatusAlive:
			alive = true
		case StatusLeaving, StatusFailed:
		case StatusLeft:
			return usageError("--status %s: a member that left gracefully is never kept (its member-leave event removes it)", st)
		default:
			return usageError("--status %q: unknown member status; hint: alive, leaving or failed, comma-separated", st)
		}
	}
	if !alive {
		return usageError("--status %s: alive must be one of the statuses", strings.Join(s.Statuses, ","))
	}
	return nil
}

// counts reports whether a member with this status stays registered.
func (s *SyncConfig) counts(status string) bool {
	if len(s.Statuses) == 0 {
		return status == StatusAlive
	}
	return status != StatusLeft && slices.Contains(s.Statuses, status)
}

func (s *SyncConfig) source() MemberSource {
	if s.Members != nil {
		return s.Members
	}
	return Agent{Addr: s.RPCAddr, AuthKey: s.RPCAuth}
}

func (s *SyncConfig) rpcTimeout() time.Duration {
	if s.RPCTimeout > 0 {
		return s.RPCTimeout
	}
	return defaultRPCTimeout
}

func (s *SyncConfig) reconcileTimeout() time.Duration {
	if s.ReconcileTimeout > 0 {
		return s.ReconcileTimeout
	}
	return defaultReconcileTimeout
}

// errAlone is a sync refused because the agent knows no member but itself:
// it has not joined its cluster yet (it just started, or -retry-join has
// not succeeded), and trusting it would empty the registry.
var errAlone = errors.New("it knows no member but itself (has it joined its cluster yet?); registry left as it was")

// rejectedMember is a member of the role whose name the registry cannot
// hold.
type rejectedMember struct {
	name string
	err  error
}

// clusterState is what the cluster calls for.
type clusterState struct {
	want     []nodestore.Node // counted members of the role, minus self, by name
	rejected []rejectedMember
	self     *ClusterMember
	alone    bool
	fetched  bool // the agent answered
}

// state selects from the members those the registry should hold: the
// role's members whose status counts, minus the agent's own node.
func (r *run) state(ms []ClusterMember) clusterState {
	var cs clusterState
	selfEnv := r.cfg.Getenv("SERF_SELF_NAME")
	others := 0
	for i, m := range ms {
		self := m.Self || m.Name == selfEnv
		if self {
			cs.self = &ms[i]
		} else {
			others++
		}
		role := m.Tags["role"]
		if self || role != r.cfg.Role || !r.cfg.counts(m.Status) {
			continue
		}
		if err := nodestore.ValidName(m.Name); err != nil {
			cs.rejected = append(cs.rejected, rejectedMember{m.Name, err})
			continue
		}
		if !m.Addr.IsValid() {
			cs.rejected = append(cs.rejected, rejectedMember{m.Name, errors.New("no valid address")})
			continue
		}
		cs.want = append(cs.want, nodestore.Node{Name: m.Name, Addr: m.Addr, Role: role, Tags: maps.Clone(m.Tags)})
	}
	cs.alone = others == 0
	cs.fetched = true
	slices.SortFunc(cs.want, func(a, b nodestore.Node) int { return strings.Compare(a.Name, b.Name) })
	return cs
}

// compare compares the registry with the cluster's state.
func compare(have, want []nodestore.Node) changes {
	var d changes
	cur := make(map[string]nodestore.Node, len(have))
	for _, n := range have {
		cur[n.Name] = n
	}
	for _, n := range want {
		old, ok := cur[n.Name]
		switch {
		case !ok:
			d.add = append(d.add, n)
		case old.Addr != n.Addr || old.Role != n.Role || !maps.Equal(old.Tags, n.Tags):
			d.update = append(d.update, n)
		}
		delete(cur, n.Name)
	}
	for _, n := range have {
		if _, gone := cur[n.Name]; gone {
			d.remove = append(d.remove, n.Name)
		}
	}
	return d
}

// fetch asks the member source within timeout.
func (r *run) fetch(ctx context.Context, timeout time.Duration) ([]ClusterMember, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, timeout, fmt.Errorf("no answer within %v", timeout))
	defer cancel()
	ms, err := r.cfg.source().Members(ctx)
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

// plan fetches the cluster's state and compares it with the registry.
func (r *run) plan(ctx context.Context, st *nodestore.Store, timeout time.Duration) (clusterState, changes, error) {
	ms, err := r.fetch(ctx, timeout)
	if err != nil {
		return clusterState{}, changes{}, err
	}
	cs := r.state(ms)
	for _, b := range cs.rejected {
		r.log.Warn("rejected", "node", b.name, "err", b.err.Error())
	}
	have, bad, err := st.List()
	for _, b := range bad { // TODO(lead): bad entries fail the run, as before List returned them apart
		err = errors.Join(err, b)
	}
	if err != nil {
		return cs, changes{}, fmt.Errorf("list registry: %v", err)
	}
	d := compare(have, cs.want)
	if cs.alone && len(d.remove) > 0 {
		return cs, changes{}, fmt.Errorf("check membership of serf agent %s: %w", r.cfg.RPCAddr, errAlone)
	}
	return cs, d, nil
}

// syncLocked makes the registry equal to the cluster's state and returns
// the changes it made. The caller holds the lock, so no event run can slip
// in between the agent's answer and the registry's update and be undone by
// an older picture.
func (r *run) syncLocked(ctx context.Context, st *nodestore.Store, timeout time.Duration) (clusterState, changes, error) {
	state, d, err := r.plan(ctx, st, timeout)
	if err != nil {
		return state, changes{}, err
	}
	if state.self != nil {
		r.adoptSelf(*state.self)
	}
	done, err := apply(st, append(d.add, d.update...), d.remove)
	if err != nil {
		return state, done, err
	}
	return state, done, nil
}

// adoptSelf gives a sync run outside Serf (the sync command) the agent's
// own name, role and tags as Serf would pass them (SERF_SELF_NAME,
// SERF_SELF_ROLE, SERF_TAG_*), so that a template using self renders the
// same bytes as in an event run, and a sync never reloads for nothing.
func (r *run) adoptSelf(m ClusterMember) {
	if r.cfg.Getenv("SERF_SELF_NAME") != "" {
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

// printDiff prints a sync's changes, one line each.
func printDiff(w io.Writer, d changes) {
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

// rejectedError is the exit status of a sync that left members out.
func rejectedError(n int) error {
	return &ExitError{Code: ExitRejected, Err: fmt.Errorf("%d member(s) rejected; the others were applied", n)}
}

// syncAndPublish is a whole sync: lock, sync, render, check, install,
// reload, exactly as an event run does after applying its lines.
func (r *run) syncAndPublish(ctx context.Context, timeout time.Duration) (changes, string, error) {
	r.add("rpc", r.cfg.RPCAddr)
	st, err := openStore(r.cfg.NodesDir)
	if err != nil {
		return changes{}, outFailed, err
	}
	unlock, err := r.lock(ctx, st)
	if err != nil {
		return changes{}, outFailed, err
	}
	defer unlock()
	state, d, err := r.syncLocked(ctx, st, timeout)
	if state.fetched {
		r.add("members", len(state.want))
		if len(state.rejected) > 0 {
			r.add("rejected", len(state.rejected))
		}
		r.addChanges("", d)
	}
	if err != nil {
		return d, outFailed, err
	}
	outcome, err := r.publish(ctx, st)
	if err == nil && len(state.rejected) > 0 {
		err = rejectedError(len(state.rejected))
	}
	return d, outcome, err
}

// SyncOptions tune Sync.
type SyncOptions struct {
	DryRun bool // print the changes a sync would make; touch nothing
}

// Sync makes the registry equal to the cluster's members of the role whose
// status counts, minus the agent's own node, then renders, checks, installs
// and reloads as an event run does (no reload when the output is
// unchanged). It prints one line per change on stdout: "+ NAME ADDR",
// "~ NAME ADDR" (address or tags changed), "- NAME". With DryRun it prints
// them and touches nothing: no lock, no write, no command.
func Sync(ctx context.Context, cfg Config, opt SyncOptions) error {
	r, closeLog, err := newRun(cfg)
	if err != nil {
		return err
	}
	defer closeLog()
	if err := r.cfg.validate(); err != nil {
		return err
	}
	if err := r.cfg.SyncConfig.validate(); err != nil {
		return err
	}
	if opt.DryRun {
		return r.syncDryRun(ctx)
	}
	r.add("event", "sync")
	d, outcome, err := r.syncAndPublish(ctx, r.cfg.rpcTimeout())
	printDiff(r.cfg.Stdout, d)
	r.add("result", outcome)
	return r.finish("sync", err)
}

func (r *run) syncDryRun(ctx context.Context) error {
	st, err := openStore(r.cfg.NodesDir)
	if err != nil {
		return err
	}
	state, d, err := r.plan(ctx, st, r.cfg.rpcTimeout())
	if err != nil {
		return err
	}
	printDiff(r.cfg.Stdout, d)
	if d.empty() {
		fmt.Fprintf(r.cfg.Stderr, "no changes: the registry matches the %d member(s) of role %s\n", len(state.want), r.cfg.Role)
	}
	if len(state.rejected) > 0 {
		return rejectedError(len(state.rejected))
	}
	return nil
}

// syncEvent handles the serf-hb-sync user event: a sync inside Serf's
// event loop, so its query is bounded by the reconcile timeout.
func (r *run) syncEvent(ctx context.Context) error {
	if err := r.cfg.validate(); err != nil {
		return r.finish("user", err)
	}
	if err := r.cfg.SyncConfig.validate(); err != nil {
		return r.finish("user", err)
	}
	_, outcome, err := r.syncAndPublish(ctx, r.cfg.reconcileTimeout())
	r.add("result", outcome)
	return r.finish("user", err)
}

// reconcile is --reconcile: after an event's lines are applied, and before
// the one publish of the run, it syncs the registry with the cluster. It
// never fails the run: the event's own changes stand, and a failure is a
// warning on the summary line.
func (r *run) reconcile(ctx context.Context, st *nodestore.Store) {
	if err := r.cfg.SyncConfig.validate(); err != nil {
		r.add("reconcile", "failed", "warn", "reconcile: "+err.Error())
		return
	}
	state, d, err := r.syncLocked(ctx, st, r.cfg.reconcileTimeout())
	switch {
	case errors.Is(err, errAlone):
		r.add("reconcile", "skipped", "warn", "reconcile: "+err.Error())
	case err != nil:
		// The event's own changes are published regardless.
		var ae *agentError
		if errors.As(err, &ae) {
			ae.untouched = false
		}
		r.add("reconcile", "failed")
		if !d.empty() {
			r.addChanges("reconcile_", d)
		}
		r.add("warn", "reconcile: "+err.Error())
	case d.empty():
		r.add("reconcile", "ok")
	default:
		r.add("reconcile", "fixed")
		r.addChanges("reconcile_", d)
	}
	if len(state.rejected) > 0 {
		r.add("reconcile_rejected", len(state.rejected))
	}
}
