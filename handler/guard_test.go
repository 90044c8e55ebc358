package handler

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/serf-hb/serf-hb/nodestore"
)

// gnode is a node of role role, at an address derived from its name, with
// tags tags ("k=v,k2=v2").
func gnode(name, role, tags string) nodestore.Node {
	n := nodestore.Node{Name: name, Addr: netip.MustParseAddr("127.0.5.1"), Role: role, Tags: map[string]string{"role": role}}
	for _, kv := range strings.Split(tags, ",") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			n.Tags[k] = v
		}
	}
	return n
}

// TestGuardHold: the nodes a run publishes, given what the registry holds
// and what was published, and what it reports held (fresh: held first by
// this run).
func TestGuardHold(t *testing.T) {
	web := func(names ...string) []nodestore.Node {
		var ns []nodestore.Node
		for _, n := range names {
			ns = append(ns, gnode(n, "web", ""))
		}
		return ns
	}
	cat := func(lists ...[]nodestore.Node) []nodestore.Node {
		var out []nodestore.Node
		for _, l := range lists {
			out = append(out, l...)
		}
		return out
	}
	for _, tt := range []struct {
		name      string
		roles     []string
		min       int
		force     bool
		published []nodestore.Node // nil: no snapshot (first start)
		heldFirst []string         // of published, those held already
		registry  []nodestore.Node
		want      []string // NAME/ROLE[/TAG] published, in order
		held      []string // ROLE:NAMES
		fresh     bool
	}{
		{name: "first start", roles: []string{"web"}, min: 2, registry: web("w1"),
			want: []string{"w1/web"}},
		{name: "above the floor", roles: []string{"web"}, min: 2, published: web("w1", "w2", "w3"), registry: web("w1", "w2"),
			want: []string{"w1/web", "w2/web"}},
		{name: "below the floor", roles: []string{"web"}, min: 2, published: web("w1", "w2", "w3"), registry: web("w3"),
			want: []string{"w1/web", "w2/web", "w3/web"}, held: []string{"web:w1,w2"}, fresh: true},
		{name: "below already", roles: []string{"web"}, min: 2, published: web("w1"), registry: nil,
			want: nil},
		{name: "force", roles: []string{"web"}, min: 2, force: true, published: web("w1", "w2", "w3"), registry: web("w3"),
			want: []string{"w3/web"}},
		{name: "hold lasts, an update of a registered node passes", roles: []string{"web"}, min: 2,
			published: web("w1", "w2", "w3"), heldFirst: []string{"w1", "w2"},
			registry: []nodestore.Node{gnode("w3", "web", "port=4000")},
			want:     []string{"w1/web", "w2/web", "w3/web/4000"}, held: []string{"web:w1,w2"}},
		{name: "hold lasts, one more held", roles: []string{"web"}, min: 2,
			published: web("w1", "w2", "w3"), heldFirst: []string{"w1"}, registry: web("w3"),
			want: []string{"w1/web", "w2/web", "w3/web"}, held: []string{"web:w1,w2"}, fresh: true},
		{name: "hold lasts, a join into the held role", roles: []string{"web"}, min: 3,
			published: web("w1", "w2", "w3"), heldFirst: []string{"w1", "w2"}, registry: web("w3", "w4"),
			want: []string{"w1/web", "w2/web", "w3/web", "w4/web"}, held: []string{"web:w1,w2"}},
		{name: "back at the floor", roles: []string{"web"}, min: 2,
			published: web("w1", "w2", "w3"), heldFirst: []string{"w1", "w2"}, registry: web("w3", "w4"),
			want: []string{"w3/web", "w4/web"}},
		{name: "two roles, one below, the other's join passes", roles: []string{"api", "web"}, min: 1,
			published: cat([]nodestore.Node{gnode("a1", "api", "")}, web("w1")), registry: web("w1", "w2"),
			want: []string{"a1/api", "w1/web", "w2/web"}, held: []string{"api:a1"}, fresh: true},
		{name: "last api node moves to web", roles: []string{"api", "web"}, min: 1,
			published: cat([]nodestore.Node{gnode("a1", "api", "")}, web("w1")),
			registry:  []nodestore.Node{gnode("a1", "web", ""), gnode("w1", "web", "")},
			want:      []string{"a1/api", "a1/web", "w1/web"}, held: []string{"api:a1"}, fresh: true},
		{name: "any role: one group, a move is no loss", roles: []string{"*"}, min: 1,
			published: []nodestore.Node{gnode("a1", "api", "")},
			registry:  []nodestore.Node{gnode("a1", "web", "")},
			want:      []string{"a1/web"}},
		{name: "any role: all nodes below the floor", roles: []string{"*"}, min: 2,
			published: []nodestore.Node{gnode("a1", "api", ""), gnode("w1", "web", "")},
			registry:  []nodestore.Node{gnode("w1", "web", "")},
			want:      []string{"a1/api", "w1/web"}, held: []string{":a1"}, fresh: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			r := &run{cfg: Config{Output: filepath.Join(dir, "out.cfg"), Roles: tt.roles, MinNodes: tt.min}, rep: newReport("test"), force: tt.force}
			if tt.published != nil {
				f := &pubFile{}
				for _, n := range tt.published {
					f.Nodes = append(f.Nodes, pubNode{Name: n.Name, Addr: n.Addr, Role: n.Role, Tags: n.Tags, Held: contains(tt.heldFirst, n.Name)})
				}
				b, err := f.marshal()
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(r.snapshotPath(), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			var got []string
			for _, n := range r.guard(tt.registry) {
				s := n.Name + "/" + n.Role
				if p := n.Tags["port"]; p != "" {
					s += "/" + p
				}
				got = append(got, s)
			}
			var held []string
			for _, h := range r.held {
				held = append(held, h.role+":"+strings.Join(h.names, ","))
			}
			if !reflect.DeepEqual(got, tt.want) || !reflect.DeepEqual(held, tt.held) || r.fresh() != tt.fresh {
				t.Errorf("published %q, held %q (fresh %v); want %q, %q (fresh %v)", got, held, r.fresh(), tt.want, tt.held, tt.fresh)
			}
			if len(r.pub.Nodes) != len(got) {
				t.Errorf("snapshot has %d nodes, the output %d", len(r.pub.Nodes), len(got))
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestGuardExitStatus: through whole event runs, exit 7 only for a run
// that holds something new; an unrelated tag update below the floor, and
// another role's join, exit 0 and are published.
func TestGuardExitStatus(t *testing.T) {
	e := newSyncEnv(t)
	metrics := filepath.Join(t.TempDir(), "metrics.prom")
	event := func(ev, lines string) (int, string) {
		t.Helper()
		e.stderr.Reset()
		cfg := e.config(nil)
		cfg.Roles, cfg.MinNodes, cfg.MetricsFile = []string{"api", "web"}, 2, metrics
		cfg.Stdin = strings.NewReader(strings.ReplaceAll(lines, " ", "\t"))
		e.env["SERF_EVENT"] = ev
		err := Handle(t.Context(), cfg)
		return exitStatus(err), e.stderr.String()
	}
	out := func() string {
		b, err := os.ReadFile(e.output)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	steps := []struct {
		ev, lines string
		code      int
		log       string   // in the summary line
		servers   []string // "server NAME" lines the output must hold
		absent    []string
	}{
		{"member-join", "a1 127.0.6.1 api role=api\na2 127.0.6.2 api role=api\nw1 127.0.6.3 web role=web\n", 0,
			"result=reloaded", []string{"a1", "a2", "w1"}, nil},
		{"member-failed", "a2 127.0.6.2 api role=api\n", 7,
			"result=guarded", []string{"a1", "a2", "w1"}, nil},
		// an unrelated tag update below the floor: published, exit 0
		{"member-update", "a1 127.0.6.1 api role=api,port=4000\n", 0,
			"result=reloaded", []string{"a1 127.0.6.1:4000", "a2", "w1"}, nil},
		// the other role's join goes through
		{"member-join", "w2 127.0.6.4 web role=web\n", 0,
			"result=reloaded", []string{"a1", "a2", "w1", "w2"}, nil},
		// web below its floor too: held as well, exit 7 for it
		{"member-leave", "w1 127.0.6.3 web role=web\n", 7,
			"result=guarded", []string{"a1", "a2", "w1", "w2"}, nil},
		// api back at its floor: its held node goes, web's stays, exit 0
		{"member-join", "a3 127.0.6.5 api role=api\n", 0,
			"result=reloaded", []string{"a1", "a3", "w1", "w2"}, []string{"a2"}},
	}
	for i, s := range steps {
		code, log := event(s.ev, s.lines)
		if code != s.code || !strings.Contains(log, s.log) {
			t.Fatalf("step %d (%s): exit %d, want %d with %q; log:\n%s", i, s.ev, code, s.code, s.log, log)
		}
		cfg := out()
		for _, srv := range s.servers {
			if !strings.Contains(cfg, "server "+srv) {
				t.Errorf("step %d: output has no server %s:\n%s", i, srv, cfg)
			}
		}
		for _, srv := range s.absent {
			if strings.Contains(cfg, "server "+srv+" ") {
				t.Errorf("step %d: output still has server %s:\n%s", i, srv, cfg)
			}
		}
	}
	m, err := os.ReadFile(metrics)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(m), `serf_hb_failures_total{kind="guarded"} 2`) {
		t.Errorf("metrics count no guarded failure:\n%s", m)
	}
	if strings.Contains(string(m), `kind="other"`) {
		t.Errorf("metrics count a guarded run as other:\n%s", m)
	}
}

// TestGuardDamagedSnapshot: a snapshot that cannot be read holds nothing
// (the registry is published, with a warning) and is rewritten, rather
// than failing every run until someone repairs it.
func TestGuardDamagedSnapshot(t *testing.T) {
	dir := t.TempDir()
	r := &run{cfg: Config{Output: filepath.Join(dir, "out.cfg"), Roles: []string{"web"}, MinNodes: 2}, rep: newReport("test")}
	if err := os.WriteFile(r.snapshotPath(), []byte("{\"nodes\": [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got := r.guard([]nodestore.Node{gnode("w1", "web", "")})
	if len(got) != 1 || len(r.held) != 0 {
		t.Errorf("published %v, held %v; want the registry, nothing held", got, r.held)
	}
	if len(r.rep.Warnings) != 1 || !strings.Contains(r.rep.Warnings[0], "read published nodes "+r.snapshotPath()) {
		t.Errorf("warnings %q; want one naming the snapshot", r.rep.Warnings)
	}
	if len(r.pub.Nodes) != 1 {
		t.Errorf("snapshot to write has %d nodes, want 1", len(r.pub.Nodes))
	}
}
