package handler

// The guard against publishing an emptied backend. When the balancer's own
// agent loses the cluster (a partition on its side), Serf reports every
// backend failed, and publishing that is an outage made by serf-hb while
// HAProxy's checks could still reach the backends. Moving the last node of
// a role to another role empties that role's backend just as well.
//
// The floor is per role: with --min-nodes N, every role's published nodes
// are kept from going from N or more to fewer. A role is a backend of the
// embedded template when several roles are selected; with one role it is
// the whole output; with --role '*' every node counts in one group, the
// embedded template's one backend. A run that would take a role below the
// floor keeps that role's published nodes in the output (those no longer
// registered under it are "held"); every other change of the run, in that
// role or another, is published. The registry always records the truth.
// A role stays held until N of its nodes are registered again (the held
// nodes then go) or an operator runs render --force.
//
// What was published is kept next to the output, as OUTPUT.published: JSON
// lines, a header counting the published nodes per role, then the nodes
// the output was rendered from, each with its role and tags (a held
// node's data can no longer be read from the registry) and whether it is
// held. It is written atomically under the registry
// lock, after the output is installed, and only when it changes. A run
// exits 7 only when it holds a node that was not held already: a later,
// unrelated event exits 0 with a warning while a hold lasts, so that Serf
// does not log an error for every event. A first start (no snapshot yet)
// publishes what the registry holds.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strings"

	"github.com/serf-hb/serf-hb/nodestore"
	"github.com/serf-hb/serf-hb/render"
)

// snapshotPath is the file keeping what the output was rendered from.
func (r *run) snapshotPath() string { return r.cfg.Output + ".published" }

// oldPublishedKey is the registry setting an earlier serf-hb kept the
// published node count in: removed by the first run that writes a
// snapshot.
func (r *run) oldPublishedKey() string { return "published-nodes " + r.absOutput() }

// pubNode is one node of the snapshot.
type pubNode struct {
	Name string            `json:"name"`
	Addr netip.Addr        `json:"addr"`
	Role string            `json:"role,omitempty"`
	Tags map[string]string `json:"tags,omitempty"`
	Held bool              `json:"held,omitempty"`
}

// pubFile is the snapshot: JSON lines, a header with the published
// count per role, then one node a line (for an operator to read, grep and
// diff). A run reads past the header only when a role may be held, so
// that the guard costs little while every role is above its floor.
type pubFile struct {
	Nodes []pubNode
}

// pubHeader is the snapshot's first line.
type pubHeader struct {
	Published map[string]int `json:"published"` // nodes per role
}

// marshal encodes the snapshot.
func (f *pubFile) marshal() ([]byte, error) {
	h := pubHeader{Published: map[string]int{}}
	for _, n := range f.Nodes {
		h.Published[n.Role]++
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b) // one encoder: one buffer for every line
	enc.SetEscapeHTML(false)
	if err := enc.Encode(h); err != nil {
		return nil, err
	}
	for _, n := range f.Nodes {
		if err := enc.Encode(n); err != nil {
			return nil, err
		}
	}
	return b.Bytes(), nil
}

// held is what the guard keeps of one role's published nodes.
type held struct {
	role       string   // "" with --role '*': all nodes together
	registered int      // the role's nodes in the registry
	published  int      // the role's nodes in the output before the run
	names      []string // the role's published nodes the registry no longer has
	fresh      []string // of names, those this run holds first
}

// what names the group for a message.
func (h held) what() string {
	if h.role == "" {
		return "the nodes"
	}
	return "role " + h.role
}

// guardGroup returns the group a node's role counts in.
func (r *run) guardGroup(role string) string {
	if slices.Contains(r.cfg.Roles, "*") {
		return ""
	}
	return role
}

// guard returns the nodes to render: the registry's, plus, for each role
// the registry would take from --min-nodes published nodes or more to
// fewer, that role's published nodes the registry no longer has. It
// records the holds in the run (r.held) and the snapshot to write after
// the install (r.pub). Without --min-nodes, or with render --force, it is
// the registry.
func (r *run) guard(registered []nodestore.Node) []nodestore.Node {
	r.held, r.pub = nil, nil
	if r.cfg.MinNodes <= 0 {
		return registered
	}
	out := make([]pubNode, 0, len(registered))
	for _, n := range registered {
		out = append(out, pubNode{Name: n.Name, Addr: n.Addr, Role: n.Role, Tags: n.Tags})
	}
	r.pub = &pubFile{Nodes: out}
	if r.force {
		return registered
	}
	prev, err := readSnapshot(r.snapshotPath(), r.mayHold(registered))
	if err != nil {
		r.rep.Warnings = append(r.rep.Warnings, fmt.Sprintf("%v; --min-nodes cannot hold anything this run, and the file is rewritten", err))
	}
	if len(prev) > 0 {
		out = r.hold(out, prev)
		r.pub.Nodes = out
	}
	if len(r.held) == 0 {
		return registered
	}
	nodes := make([]nodestore.Node, len(out))
	for i, n := range out {
		nodes[i] = nodestore.Node{Name: n.Name, Addr: n.Addr, Role: n.Role, Tags: n.Tags}
	}
	return nodes
}

// mayHold returns whether a snapshot whose header counts published nodes
// per role would have the guard hold a group: one with MinNodes published
// nodes or more and fewer registered.
func (r *run) mayHold(registered []nodestore.Node) func(map[string]int) bool {
	return func(published map[string]int) bool {
		pub, reg := map[string]int{}, map[string]int{}
		for role, c := range published {
			pub[r.guardGroup(role)] += c
		}
		for _, n := range registered {
			reg[r.guardGroup(n.Role)]++
		}
		for g, c := range pub {
			if c >= r.cfg.MinNodes && reg[g] < r.cfg.MinNodes {
				return true
			}
		}
		return false
	}
}

// hold adds to the registry's nodes (reg) the published nodes (prev) of
// each group that falls below the floor, and records the holds.
func (r *run) hold(reg, prev []pubNode) []pubNode {
	n := r.cfg.MinNodes
	count := map[string]int{}
	in := map[string]map[string]bool{} // group -> registered names
	for _, x := range reg {
		g := r.guardGroup(x.Role)
		count[g]++
		if in[g] == nil {
			in[g] = map[string]bool{}
		}
		in[g][x.Name] = true
	}
	published := map[string]int{}
	for _, x := range prev {
		published[r.guardGroup(x.Role)]++
	}
	groups := map[string]*held{}
	out := reg
	for _, x := range prev {
		g := r.guardGroup(x.Role)
		if published[g] < n || count[g] >= n || in[g][x.Name] {
			continue
		}
		h := groups[g]
		if h == nil {
			h = &held{role: g, registered: count[g], published: published[g]}
			groups[g] = h
		}
		if slices.Contains(h.names, x.Name) {
			continue // listed twice in a snapshot written under other roles
		}
		h.names = append(h.names, x.Name)
		if !x.Held {
			h.fresh = append(h.fresh, x.Name)
		}
		x.Held = true
		out = append(out, x)
	}
	for _, h := range groups {
		r.held = append(r.held, *h)
	}
	slices.SortFunc(r.held, func(a, b held) int { return strings.Compare(a.role, b.role) })
	// Sorted by name, as the registry lists them, then by role: a node
	// that moved out of a held role is published under both.
	slices.SortStableFunc(out, func(a, b pubNode) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.Role, b.Role)
	})
	return out
}

// readSnapshot reads the nodes of the snapshot at path when its header
// says need them; nil when there is none.
func readSnapshot(path string, need func(published map[string]int) bool) ([]pubNode, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read published nodes: %v", err)
	}
	defer f.Close()
	br := bufio.NewReader(f)
	line, err := br.ReadBytes('\n')
	var h pubHeader
	if err == nil {
		err = json.Unmarshal(line, &h)
	}
	if err != nil {
		return nil, fmt.Errorf("read published nodes %s: header: %v", path, err)
	}
	if !need(h.Published) {
		return nil, nil
	}
	var nodes []pubNode
	for i := 2; ; i++ {
		line, err := br.ReadBytes('\n')
		if err == io.EOF && len(line) == 0 {
			return nodes, nil
		}
		var n pubNode
		if err == nil {
			err = json.Unmarshal(line, &n)
		}
		if err != nil {
			return nil, fmt.Errorf("read published nodes %s: line %d: %v", path, i, err)
		}
		nodes = append(nodes, n)
	}
}

// fresh reports whether the run holds a node that was not held before.
func (r *run) fresh() bool {
	for _, h := range r.held {
		if len(h.fresh) > 0 {
			return true
		}
	}
	return false
}

// guardReport puts the holds in the report: a hold that began earlier is
// a warning; one this run began is the run's error (exit 7), returned.
func (r *run) guardReport() error {
	if len(r.held) == 0 {
		return nil
	}
	r.rep.MinNodes, r.rep.Published = r.cfg.MinNodes, len(r.pub.Nodes)
	var fresh []string
	for _, h := range r.held {
		r.rep.Held = append(r.rep.Held, h.role+":"+names(h.names))
		if len(h.fresh) == 0 {
			r.rep.Warnings = append(r.rep.Warnings, fmt.Sprintf(
				"--min-nodes %d still holds %s: %s kept in %s though not registered (%d registered); they go once %d are, or with serf-hb render --force",
				r.cfg.MinNodes, h.what(), names(h.names), r.cfg.Output, h.registered, r.cfg.MinNodes))
			continue
		}
		fresh = append(fresh, fmt.Sprintf("%s would go from %d published node(s) to %d, below --min-nodes %d: %s kept in %s",
			h.what(), h.published, h.registered, r.cfg.MinNodes, names(h.names), r.cfg.Output))
	}
	if len(fresh) == 0 {
		return nil
	}
	return &ExitError{Code: ExitGuarded, Err: fmt.Errorf(
		"guarded: %s; the registry is updated and the run's other changes published; hint: if this is meant, serf-hb render --force publishes it",
		strings.Join(fresh, "; "))}
}

// dryRunNote says on stderr what a real run would hold.
func (r *run) dryRunNote() {
	for _, h := range r.held {
		how := "would hold"
		if len(h.fresh) == 0 {
			how = "still holds"
		}
		fmt.Fprintf(r.cfg.Stderr, "guard: a real run %s %s: %s kept though not registered (%d registered, %d published, --min-nodes %d); hint: render --force publishes without them\n",
			how, h.what(), names(h.names), h.registered, h.published, r.cfg.MinNodes)
	}
}

// published records what the output now holds. Without --min-nodes it
// removes a snapshot left by an earlier run with it: a stale one would
// hold long-gone nodes the day the guard is turned back on.
func (r *run) published(st *nodestore.Store) error {
	if r.pub == nil {
		if err := os.Remove(r.snapshotPath()); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove published nodes: %v", err)
		}
		return nil
	}
	b, err := r.pub.marshal()
	if err != nil {
		return fmt.Errorf("record published nodes: %v", err)
	}
	if err := render.WriteFile(r.snapshotPath(), b); err != nil {
		return fmt.Errorf("record published nodes: %v", err)
	}
	if _, set, _ := st.Value(r.oldPublishedKey()); set {
		if err := st.SetValue(r.oldPublishedKey(), ""); err != nil {
			return fmt.Errorf("remove published node count: %v", err)
		}
	}
	return nil
}
