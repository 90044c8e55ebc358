package handler

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/serf-hb/serf-hb/handler/serfrpc"
	"github.com/serf-hb/serf-hb/nodestore"
)

// fakeMembers is a memberSource with a fixed answer.
type fakeMembers struct {
	members []serfrpc.Member
	err     error
	calls   int
}

func (f *fakeMembers) Members(ctx context.Context) ([]serfrpc.Member, error) {
	f.calls++
	return f.members, f.err
}

func member(name, addr, role, status string) serfrpc.Member {
	tags := map[string]string{"port": "3000"}
	if role != "" {
		tags["role"] = role
	}
	return serfrpc.Member{Name: name, Addr: netip.MustParseAddr(addr), Tags: tags, Status: status}
}

// cluster is a balancer (self) with backends b1, b2 alive, b3 failed, b4
// leaving, b5 left, and a member of another role.
func cluster() []serfrpc.Member {
	self := member("lb", "127.0.2.1", "lb", serfrpc.StatusAlive)
	self.Self = true
	return []serfrpc.Member{
		self,
		member("b1", "127.0.2.11", "backend", serfrpc.StatusAlive),
		member("b2", "127.0.2.12", "backend", serfrpc.StatusAlive),
		member("b3", "127.0.2.13", "backend", serfrpc.StatusFailed),
		member("b4", "127.0.2.14", "backend", serfrpc.StatusLeaving),
		member("b5", "127.0.2.15", "backend", serfrpc.StatusLeft),
		member("db", "127.0.2.20", "db", serfrpc.StatusAlive),
	}
}

// syncEnv is a registry, an output and a reload counter in a temp dir.
type syncEnv struct {
	t                     *testing.T
	nodes, output, reload string
	stdout, stderr        bytes.Buffer
	env                   map[string]string
}

func newSyncEnv(t *testing.T) *syncEnv {
	t.Helper()
	dir := t.TempDir()
	e := &syncEnv{t: t, nodes: filepath.Join(dir, "nodes"), output: filepath.Join(dir, "haproxy.cfg"),
		reload: filepath.Join(dir, "reloads"), env: map[string]string{}}
	if err := os.Mkdir(e.nodes, 0o755); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *syncEnv) config(src memberSource) Config {
	return Config{
		NodesDir: e.nodes, Output: e.output, Roles: []string{"backend"},
		LockTimeout: time.Minute, CheckTimeout: time.Minute, ReloadTimeout: time.Minute, RPCTimeout: time.Second, ReconcileTimeout: time.Second,
		Reload:  "sh -c 'echo >> " + e.reload + "'",
		RPCAddr: "127.0.2.1:7373", Members: src,
		Stdin: strings.NewReader(""), Stdout: &e.stdout, Stderr: &e.stderr,
		Getenv:  func(k string) string { return e.env[k] },
		Environ: func() []string { return nil },
	}
}

func (e *syncEnv) put(name, addr string) {
	e.t.Helper()
	st, err := nodestore.Open(e.nodes)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, _, err := st.Put(nodestore.Node{Name: name, Addr: netip.MustParseAddr(addr), Role: "backend",
		Tags: map[string]string{"port": "3000", "role": "backend"}}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *syncEnv) registry() []string {
	e.t.Helper()
	st, err := nodestore.Open(e.nodes)
	if err != nil {
		e.t.Fatal(err)
	}
	nodes, bad, err := st.List()
	if err != nil || bad != nil {
		e.t.Fatal(err, bad)
	}
	var list []string
	for _, n := range nodes {
		list = append(list, n.Name+" "+n.Addr.String())
	}
	return list
}

func (e *syncEnv) reloads() int {
	data, err := os.ReadFile(e.reload)
	if errors.Is(err, fs.ErrNotExist) {
		return 0
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return bytes.Count(data, []byte("\n"))
}

// snapshot records every file under dirs (dotfiles included) with its
// contents and modification time, except the lock file: a run that takes
// the lock creates it, empty, and it is no part of the registry.
func snapshot(t *testing.T, dirs ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, dir := range dirs {
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() || d.Name() == ".lock" {
				return nil
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			b, _ := os.ReadFile(p)
			out[p] = fi.ModTime().String() + "|" + string(b)
			return nil
		})
	}
	return out
}

func exitStatus(err error) int { return ExitCode(err) }

func TestSyncMakesRegistryEqual(t *testing.T) {
	e := newSyncEnv(t)
	e.put("b1", "127.0.2.99")   // stale address
	e.put("ghost", "127.0.2.9") // added by hand, not a member
	e.put("b3", "127.0.2.13")   // failed
	e.put("b4", "127.0.2.14")   // leaving: kept until its member-leave
	src := &fakeMembers{members: cluster()}
	if err := Sync(context.Background(), e.config(src), SyncOptions{}); err != nil {
		t.Fatalf("Sync: %v\n%s", err, e.stderr.String())
	}
	want := []string{"b1 127.0.2.11", "b2 127.0.2.12", "b4 127.0.2.14"}
	if got := e.registry(); !reflect.DeepEqual(got, want) {
		t.Errorf("registry = %q, want %q", got, want)
	}
	wantOut := "+ b2 127.0.2.12\n~ b1 127.0.2.11\n- b3\n- ghost\n"
	if got := e.stdout.String(); got != wantOut {
		t.Errorf("stdout = %q, want %q", got, wantOut)
	}
	log := e.stderr.String()
	for _, s := range []string{"msg=sync", "event=sync", "rpc=127.0.2.1:7373", "members=2", "added=b2", "updated=b1", "removed=b3,ghost", "nodes=3", "result=reloaded"} {
		if !strings.Contains(log, s) {
			t.Errorf("summary line lacks %s: %s", s, log)
		}
	}
	if n := strings.Count(log, "\n"); n != 1 {
		t.Errorf("%d log lines, want 1: %s", n, log)
	}
	if e.reloads() != 1 {
		t.Errorf("%d reloads, want 1", e.reloads())
	}
	out, _ := os.ReadFile(e.output)
	if !strings.Contains(string(out), "server b1 127.0.2.11:3000") || strings.Contains(string(out), "ghost") {
		t.Errorf("output does not match the cluster:\n%s", out)
	}

	// A second sync finds nothing to do: no change, no reload, no stdout.
	e.stdout.Reset()
	e.stderr.Reset()
	if err := Sync(context.Background(), e.config(src), SyncOptions{}); err != nil {
		t.Fatalf("second Sync: %v", err)
	}
	if e.stdout.Len() != 0 || e.reloads() != 1 || !strings.Contains(e.stderr.String(), "result=unchanged") {
		t.Errorf("second sync changed something: stdout %q, %d reloads, log %s", e.stdout.String(), e.reloads(), e.stderr.String())
	}
}

func TestSyncStatuses(t *testing.T) {
	for _, tt := range []struct {
		statuses []string
		want     []string
	}{
		{nil, []string{"b1", "b2"}},
		{[]string{"alive"}, []string{"b1", "b2"}},
		{[]string{"alive", "failed"}, []string{"b1", "b2", "b3"}},
		{[]string{"alive", "leaving"}, []string{"b1", "b2", "b4"}},
		{[]string{"alive", "leaving", "failed"}, []string{"b1", "b2", "b3", "b4"}},
	} {
		cfg := Config{Roles: []string{"backend"}, Statuses: tt.statuses, Getenv: func(string) string { return "" }}
		state := decideCluster(cluster(), cfg.policy())
		var got []string
		for _, n := range state.want {
			got = append(got, n.Name)
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("--status %v: want %v, got %v", tt.statuses, tt.want, got)
		}
		if state.self == nil || state.self.Name != "lb" || state.alone {
			t.Errorf("--status %v: self %v, alone %v", tt.statuses, state.self, state.alone)
		}
	}
}

// TestSyncKeepsLeaving: a member Serf lists as leaving is kept while
// registered (its member-leave event removes it) and never added; one that
// left, or failed, is removed.
func TestSyncKeepsLeaving(t *testing.T) {
	cfg := Config{Roles: []string{"backend"}, Getenv: func(string) string { return "" }}
	cs := decideCluster(cluster(), cfg.policy())
	node := func(name string) nodestore.Node {
		return nodestore.Node{Name: name, Addr: netip.MustParseAddr("127.0.2.1"), Role: "backend"}
	}
	for _, tt := range []struct {
		have         []string
		add, removed []string
	}{
		{[]string{"b1", "b2", "b4"}, nil, nil},
		{[]string{"b1", "b2"}, nil, nil},
		{[]string{"b1", "b2", "b3", "b4", "b5"}, nil, []string{"b3", "b5"}},
	} {
		var have []nodestore.Node
		for _, n := range tt.have {
			have = append(have, node(n))
		}
		d := compare(have, cs.want, cs.leaving)
		var add []string
		for _, n := range d.add {
			add = append(add, n.Name)
		}
		if !reflect.DeepEqual(add, tt.add) || !reflect.DeepEqual(d.remove, tt.removed) {
			t.Errorf("registry %v: added %v, removed %v; want %v, %v", tt.have, add, d.remove, tt.add, tt.removed)
		}
	}
	// With leaving counted, it is registered like any alive member.
	cfg.Statuses = []string{"alive", "leaving"}
	if cs := decideCluster(cluster(), cfg.policy()); len(cs.leaving) != 0 {
		t.Errorf("--status alive,leaving: leaving = %v, want none (they are in want)", cs.leaving)
	}
}

func TestSyncStatusValidation(t *testing.T) {
	for _, tt := range []struct {
		statuses []string
		err      string
	}{
		{[]string{"alive", "left"}, "left gracefully"},
		{[]string{"failed"}, "alive must be one"},
		{[]string{"alive", "dead"}, "unknown member status"},
		{[]string{"alive", "failed", "leaving"}, ""},
	} {
		s := Config{RPCAddr: "x:1", Statuses: tt.statuses}
		err := s.validateStatuses()
		if tt.err == "" {
			if err != nil {
				t.Errorf("%v: %v", tt.statuses, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.err) || ExitCode(err) != ExitUsage {
			t.Errorf("%v: err %v (status %d), want usage error with %q", tt.statuses, err, ExitCode(err), tt.err)
		}
	}
	e := newSyncEnv(t)
	cfg := e.config(nil)
	cfg.RPCAddr = ""
	if err := Sync(context.Background(), cfg, SyncOptions{}); ExitCode(err) != ExitUsage || !strings.Contains(e.stderr.String(), "--rpc-addr is empty") {
		t.Errorf("empty --rpc-addr: %v, %s", err, e.stderr.String())
	}
}

func TestSyncSelfNeverRegistered(t *testing.T) {
	e := newSyncEnv(t)
	// The balancer has the backend role too: it must still be left out,
	// whether the agent marks it or only SERF_SELF_NAME names it.
	ms := cluster()[:3]
	ms[0].Tags["role"] = "backend"
	if err := Sync(context.Background(), e.config(&fakeMembers{members: ms}), SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := e.registry(); len(got) != 2 || strings.HasPrefix(got[0], "lb ") {
		t.Errorf("registry = %q", got)
	}
	ms[0].Self = false
	e.env["SERF_SELF_NAME"] = "lb"
	if err := Sync(context.Background(), e.config(&fakeMembers{members: ms}), SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := e.registry(); len(got) != 2 {
		t.Errorf("registry = %q", got)
	}
}

func TestSyncDryRunTouchesNothing(t *testing.T) {
	e := newSyncEnv(t)
	e.put("b1", "127.0.2.11")
	e.put("ghost", "127.0.2.9")
	before := snapshot(t, filepath.Dir(e.nodes))
	src := &fakeMembers{members: cluster()}
	if err := Sync(context.Background(), e.config(src), SyncOptions{DryRun: true}); err != nil {
		t.Fatal(err)
	}
	if got, want := e.stdout.String(), "+ b2 127.0.2.12\n- ghost\n"; got != want {
		t.Errorf("stdout = %q, want %q", got, want)
	}
	if after := snapshot(t, filepath.Dir(e.nodes)); !reflect.DeepEqual(before, after) {
		t.Errorf("dry run touched files:\nbefore %v\nafter  %v", before, after)
	}
	if _, err := os.Stat(filepath.Join(e.nodes, ".lock")); err == nil {
		t.Error("dry run took the lock")
	}

	// Nothing to do: stdout stays empty, stderr says so.
	e2 := newSyncEnv(t)
	e2.put("b1", "127.0.2.11")
	e2.put("b2", "127.0.2.12")
	if err := Sync(context.Background(), e2.config(src), SyncOptions{DryRun: true}); err != nil {
		t.Fatal(err)
	}
	if e2.stdout.Len() != 0 || !strings.Contains(e2.stderr.String(), "no changes") {
		t.Errorf("stdout %q, stderr %q", e2.stdout.String(), e2.stderr.String())
	}
}

func TestSyncAgentUnreachable(t *testing.T) {
	e := newSyncEnv(t)
	e.put("b1", "127.0.2.11")
	e.put("ghost", "127.0.2.9")
	if err := Render(context.Background(), e.config(nil), RenderOptions{}); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, e.nodes, e.output)
	reloads := e.reloads()
	e.stderr.Reset()
	src := &fakeMembers{err: errors.New("dial tcp 127.0.2.1:7373: connect: connection refused")}
	err := Sync(context.Background(), e.config(src), SyncOptions{})
	if exitStatus(err) != ExitFailure {
		t.Fatalf("exit status %d (%v), want %d", exitStatus(err), err, ExitFailure)
	}
	log := e.stderr.String()
	for _, s := range []string{"level=ERROR", "query serf agent 127.0.2.1:7373", "connection refused", "left as they were", "result=failed"} {
		if !strings.Contains(log, s) {
			t.Errorf("log lacks %q: %s", s, log)
		}
	}
	if strings.Contains(log, "added=") {
		t.Errorf("log reports changes that were never computed: %s", log)
	}
	if after := snapshot(t, e.nodes, e.output); !reflect.DeepEqual(before, after) {
		t.Errorf("registry or output touched:\nbefore %v\nafter  %v", before, after)
	}
	if e.reloads() != reloads || e.stdout.Len() != 0 {
		t.Errorf("reloads %d -> %d, stdout %q", reloads, e.reloads(), e.stdout.String())
	}
}

func TestSyncRefusesLoneAgent(t *testing.T) {
	e := newSyncEnv(t)
	e.put("b1", "127.0.2.11")
	before := snapshot(t, e.nodes)
	lone := cluster()[:1]
	err := Sync(context.Background(), e.config(&fakeMembers{members: lone}), SyncOptions{})
	if exitStatus(err) != ExitFailure || !strings.Contains(e.stderr.String(), "knows no member but itself") {
		t.Fatalf("exit %d, log %s", exitStatus(err), e.stderr.String())
	}
	if after := snapshot(t, e.nodes); !reflect.DeepEqual(before, after) {
		t.Error("a lone agent emptied the registry")
	}
	// With nothing to remove, a lone agent is harmless.
	e2 := newSyncEnv(t)
	if err := Sync(context.Background(), e2.config(&fakeMembers{members: lone}), SyncOptions{}); err != nil {
		t.Errorf("empty registry, lone agent: %v", err)
	}
}

func TestSyncRejectsBadNames(t *testing.T) {
	e := newSyncEnv(t)
	ms := append(cluster(), member("bad name", "127.0.2.30", "backend", serfrpc.StatusAlive),
		member("other bad", "127.0.2.31", "db", serfrpc.StatusAlive))
	err := Sync(context.Background(), e.config(&fakeMembers{members: ms}), SyncOptions{})
	if exitStatus(err) != ExitRejected {
		t.Fatalf("exit %d (%v), want %d", exitStatus(err), err, ExitRejected)
	}
	log := e.stderr.String()
	if !strings.Contains(log, `level=WARN msg=rejected node="bad name"`) || strings.Contains(log, "other bad") {
		t.Errorf("log: %s", log)
	}
	if got := e.registry(); len(got) != 2 {
		t.Errorf("the valid members were not applied: %q", got)
	}
}

// TestSyncRendersSelfLikeAnEvent: outside Serf, sync takes the agent's own
// name and tags for the template's self, so an event run and a sync render
// the same bytes and a sync never reloads for nothing.
func TestSyncRendersSelfLikeAnEvent(t *testing.T) {
	e := newSyncEnv(t)
	tpl := filepath.Join(filepath.Dir(e.nodes), "t.tmpl")
	src := "# {{ self.name }} {{ self.role }} {{ self.tags.dc }} {{ self.tags.my_tag }}\n{% for n in nodes %}{{ n.name }}\n{% endfor %}"
	if err := os.WriteFile(tpl, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	ms := cluster()
	ms[0].Tags["dc"] = "eu"
	ms[0].Tags["my-tag"] = "x"
	// The event run, with Serf's environment.
	env := map[string]string{"SERF_EVENT": "member-join", "SERF_SELF_NAME": "lb", "SERF_SELF_ROLE": "lb",
		"SERF_TAG_ROLE": "lb", "SERF_TAG_DC": "eu", "SERF_TAG_MY_TAG": "x", "SERF_TAG_PORT": "3000"}
	cfg := e.config(nil)
	cfg.Template = tpl
	cfg.Getenv = func(k string) string { return env[k] }
	cfg.Environ = func() []string {
		var l []string
		for k, v := range env {
			l = append(l, k+"="+v)
		}
		return l
	}
	cfg.Stdin = strings.NewReader("lb\t127.0.2.1\tlb\trole=lb\nb1\t127.0.2.11\tbackend\tport=3000,role=backend\nb2\t127.0.2.12\tbackend\trole=backend,port=3000\n")
	if err := Handle(context.Background(), cfg); err != nil {
		t.Fatalf("Handle: %v\n%s", err, e.stderr.String())
	}
	out, _ := os.ReadFile(e.output)
	if !strings.HasPrefix(string(out), "# lb lb eu x\n") {
		t.Fatalf("event output: %q", out)
	}
	reloads := e.reloads()
	e.stderr.Reset()
	// The sync, from a shell with no SERF_* variables.
	cfg = e.config(&fakeMembers{members: ms})
	cfg.Template = tpl
	if err := Sync(context.Background(), cfg, SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(e.stderr.String(), "result=unchanged") || e.reloads() != reloads {
		t.Errorf("sync re-rendered differently: %s", e.stderr.String())
	}
}

func TestTagEnvName(t *testing.T) {
	// Serf upper-cases first, then replaces what is outside [A-Z0-9_] rune
	// by rune: "é" becomes "É", itself outside the set.
	for in, want := range map[string]string{"role": "ROLE", "my-tag": "MY_TAG", "a.b c": "A_B_C", "é1": "_1", "x☃y": "X_Y", "under_score": "UNDER_SCORE"} {
		if got := tagEnvName(in); got != want {
			t.Errorf("tagEnvName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSyncUserEvent(t *testing.T) {
	e := newSyncEnv(t)
	e.put("ghost", "127.0.2.9")
	src := &fakeMembers{members: cluster()}
	e.env = map[string]string{"SERF_EVENT": "user", "SERF_USER_EVENT": syncEvent, "SERF_SELF_NAME": "lb"}
	cfg := e.config(src)
	cfg.Stdin = strings.NewReader("some payload\n")
	if err := Handle(context.Background(), cfg); err != nil {
		t.Fatalf("Handle: %v\n%s", err, e.stderr.String())
	}
	if got := e.registry(); !reflect.DeepEqual(got, []string{"b1 127.0.2.11", "b2 127.0.2.12"}) {
		t.Errorf("registry = %q", got)
	}
	log := e.stderr.String()
	if !strings.Contains(log, "msg=user event=user name=serf-hb-sync") || !strings.Contains(log, "removed=ghost") {
		t.Errorf("log: %s", log)
	}
	if e.stdout.Len() != 0 {
		t.Errorf("a handler run wrote to stdout: %q", e.stdout.String())
	}

	// Other user events, and a query of the same name, touch nothing.
	for _, env := range []map[string]string{
		{"SERF_EVENT": "user", "SERF_USER_EVENT": "deploy"},
		{"SERF_EVENT": "query", "SERF_QUERY_NAME": syncEvent},
	} {
		src.calls = 0
		e.put("ghost", "127.0.2.9")
		e.env = env
		if err := Handle(context.Background(), e.config(src)); err != nil {
			t.Fatal(err)
		}
		if src.calls != 0 || len(e.registry()) != 3 {
			t.Errorf("%v: %d agent queries, registry %q", env, src.calls, e.registry())
		}
	}
}

func TestReconcile(t *testing.T) {
	join := "b2\t127.0.2.12\tbackend\trole=backend,port=3000\n"
	t.Run("fixes", func(t *testing.T) {
		e := newSyncEnv(t)
		e.put("ghost", "127.0.2.9") // missed leave
		e.env = map[string]string{"SERF_EVENT": "member-join", "SERF_SELF_NAME": "lb"}
		cfg := e.config(&fakeMembers{members: cluster()})
		cfg.Reconcile = true
		cfg.Stdin = strings.NewReader(join)
		if err := Handle(context.Background(), cfg); err != nil {
			t.Fatalf("Handle: %v\n%s", err, e.stderr.String())
		}
		if got := e.registry(); !reflect.DeepEqual(got, []string{"b1 127.0.2.11", "b2 127.0.2.12"}) {
			t.Errorf("registry = %q", got)
		}
		log := e.stderr.String()
		for _, s := range []string{"added=b2", "reconcile=fixed", "reconcile_added=b1", "reconcile_removed=ghost", "result=reloaded"} {
			if !strings.Contains(log, s) {
				t.Errorf("log lacks %s: %s", s, log)
			}
		}
		if e.reloads() != 1 {
			t.Errorf("%d reloads, want 1 (one publish per run)", e.reloads())
		}
	})
	t.Run("agent down is a warning", func(t *testing.T) {
		e := newSyncEnv(t)
		e.env = map[string]string{"SERF_EVENT": "member-join", "SERF_SELF_NAME": "lb"}
		cfg := e.config(&fakeMembers{err: errors.New("connection refused")})
		cfg.Reconcile = true
		cfg.Stdin = strings.NewReader(join)
		if err := Handle(context.Background(), cfg); err != nil {
			t.Fatalf("a reconcile failure failed the event: %v", err)
		}
		log := e.stderr.String()
		if !strings.Contains(log, "level=INFO") || !strings.Contains(log, "reconcile=failed") || !strings.Contains(log, `warn="reconcile: query serf agent`) {
			t.Errorf("log: %s", log)
		}
		if got := e.registry(); !reflect.DeepEqual(got, []string{"b2 127.0.2.12"}) {
			t.Errorf("the event's own change was lost: %q", got)
		}
	})
	t.Run("lone agent is skipped", func(t *testing.T) {
		e := newSyncEnv(t)
		e.put("b1", "127.0.2.11")
		e.env = map[string]string{"SERF_EVENT": "member-join", "SERF_SELF_NAME": "lb"}
		cfg := e.config(&fakeMembers{members: cluster()[:1]})
		cfg.Reconcile = true
		cfg.Stdin = strings.NewReader("lb\t127.0.2.1\tlb\trole=lb\n")
		if err := Handle(context.Background(), cfg); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(e.stderr.String(), "reconcile=skipped") || len(e.registry()) != 1 {
			t.Errorf("log %s, registry %q", e.stderr.String(), e.registry())
		}
	})
	t.Run("exit status is the event's", func(t *testing.T) {
		e := newSyncEnv(t)
		e.env = map[string]string{"SERF_EVENT": "member-join", "SERF_SELF_NAME": "lb"}
		cfg := e.config(&fakeMembers{err: errors.New("connection refused")})
		cfg.Reconcile = true
		cfg.Stdin = strings.NewReader(join + "bad name\t127.0.2.30\tbackend\trole=backend\n")
		if err := Handle(context.Background(), cfg); exitStatus(err) != ExitRejected {
			t.Errorf("exit %d, want %d", exitStatus(err), ExitRejected)
		}
	})
}

func TestMemberFailedKeptWhenFailedCounts(t *testing.T) {
	for _, tt := range []struct {
		statuses []string
		want     int
	}{{nil, 0}, {[]string{"alive", "failed"}, 1}} {
		e := newSyncEnv(t)
		e.put("b1", "127.0.2.11")
		e.env = map[string]string{"SERF_EVENT": "member-failed", "SERF_SELF_NAME": "lb"}
		cfg := e.config(nil)
		cfg.Statuses = tt.statuses
		cfg.Stdin = strings.NewReader("b1\t127.0.2.11\tbackend\trole=backend,port=3000\n")
		if err := Handle(context.Background(), cfg); err != nil {
			t.Fatal(err)
		}
		if got := len(e.registry()); got != tt.want {
			t.Errorf("--status %v: %d nodes after member-failed, want %d", tt.statuses, got, tt.want)
		}
	}
	// A bad --status fails every event run, as any bad setting does.
	e := newSyncEnv(t)
	e.env = map[string]string{"SERF_EVENT": "member-join"}
	cfg := e.config(nil)
	cfg.Statuses = []string{"alive", "faild"}
	if err := Handle(context.Background(), cfg); exitStatus(err) != ExitUsage {
		t.Errorf("exit %d, want %d", exitStatus(err), ExitUsage)
	}
}

func TestCompare(t *testing.T) {
	n := func(name, addr string, tags map[string]string) nodestore.Node {
		return nodestore.Node{Name: name, Addr: netip.MustParseAddr(addr), Role: "backend", Tags: tags}
	}
	have := []nodestore.Node{n("a", "10.0.0.1", nil), n("b", "10.0.0.2", map[string]string{"x": "1"}), n("c", "10.0.0.3", nil), n("d", "10.0.0.4", map[string]string{})}
	want := []nodestore.Node{n("a", "10.0.0.1", map[string]string{}), n("b", "10.0.0.2", map[string]string{"x": "2"}), n("d", "10.0.0.5", nil), n("e", "10.0.0.6", nil)}
	d := compare(have, want, nil)
	names := func(ns []nodestore.Node) []string {
		var l []string
		for _, x := range ns {
			l = append(l, x.Name)
		}
		sort.Strings(l)
		return l
	}
	if got := names(d.add); !reflect.DeepEqual(got, []string{"e"}) {
		t.Errorf("add = %v", got)
	}
	if got := names(d.update); !reflect.DeepEqual(got, []string{"b", "d"}) {
		t.Errorf("update = %v", got)
	}
	if !reflect.DeepEqual(d.remove, []string{"c"}) {
		t.Errorf("remove = %v", d.remove)
	}
}

// TestSyncWildcardWarns: with --role '*', a sync warns, as a member event
// does, about the members it registers that have no role or the
// balancer's own role (another balancer), taken from the agent's own
// entry when Serf's environment does not say it (the sync command); the
// dry run says it too.
func TestSyncWildcardWarns(t *testing.T) {
	ms := append(cluster(), member("lb2", "127.0.2.2", "lb", serfrpc.StatusAlive), member("bare", "127.0.2.3", "", serfrpc.StatusAlive))
	want := `--role '*' registers every member without a role or with this balancer's own role "lb" (other balancers): bare,lb2; hint: list the backend roles instead`
	for _, roles := range [][]string{{"*"}, {"backend", "lb"}} {
		e := newSyncEnv(t)
		cfg := e.config(&fakeMembers{members: ms})
		cfg.Roles = roles
		if err := Sync(context.Background(), cfg, SyncOptions{}); err != nil {
			t.Fatalf("Sync: %v\n%s", err, e.stderr.String())
		}
		log := e.stderr.String()
		warned := strings.Contains(log, "level=WARN msg=warning warn=\"--role '*' registers every member without a role") &&
			strings.Contains(log, `own role \"lb\" (other balancers): bare,lb2; hint:`)
		if warned != (roles[0] == "*") {
			t.Errorf("--role %s: warned %v; log:\n%s", roles, warned, e.stderr.String())
		}
		if roles[0] != "*" {
			continue
		}
		e.stderr.Reset()
		if err := Sync(context.Background(), cfg, SyncOptions{DryRun: true}); err != nil {
			t.Fatalf("Sync --dry-run: %v", err)
		}
		if !strings.Contains(e.stderr.String(), "warning: "+want) {
			t.Errorf("dry run does not warn: %s", e.stderr.String())
		}
	}
}
