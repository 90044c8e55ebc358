package handler

// Deciding what the registry should become is pure: member lines or the
// agent's member list in, changes out. The transaction applies them.

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/serf-hb/serf-hb/handler/serfevent"

	"github.com/serf-hb/serf-hb/handler/serfrpc"
	"github.com/serf-hb/serf-hb/nodestore"
	"github.com/serf-hb/serf-hb/render"
)

// changes is what a run does, or would do, to the registry.
type changes struct {
	add, update []nodestore.Node
	remove      []string
}

func (c changes) empty() bool { return len(c.add)+len(c.update)+len(c.remove) == 0 }

// puts returns the nodes to write: additions and updates.
func (c changes) puts() []nodestore.Node { return append(slices.Clip(c.add), c.update...) }

// rejection is input that could not be used: a stdin line (Line > 0) or a
// member of the agent's list.
type rejection struct {
	Line int
	Name string
	Err  error
}

// policy says which members the registry holds.
type policy struct {
	roles    []string // "*" means any
	self     string   // the node running serf-hb, never registered
	selfRole string   // its role: with "*", other balancers have it too
	statuses func(status string) bool
}

func (c *Config) policy() policy {
	return policy{roles: c.Roles, self: c.Getenv("SERF_SELF_NAME"), selfRole: c.Getenv("SERF_SELF_ROLE"), statuses: c.counts}
}

// ours reports whether a member with this role is registered.
func (p policy) ours(role string) bool {
	return slices.Contains(p.roles, role) || slices.Contains(p.roles, "*")
}

// decision is what an event's lines call for.
type decision struct {
	want     changes // puts are candidates; removes are names to drop if present
	ignored  []string
	rejected []rejection
	warnings []string
}

// decideEvent turns one member event's lines into changes: a join or
// update of a member of the roles registers it; a leave, failure or reap
// of any member, or an update that moved it out of the roles, removes it
// (a removal needs only the name). With failed among the statuses, a
// failure keeps the node until it is reaped.
func decideEvent(ev string, members []serfevent.Member, p policy) (d decision) {
	var wild []string // registered only because of --role '*'
	defer func() {
		if w := p.wildcardWarning(wild); w != "" {
			d.warnings = append(d.warnings, w)
		}
	}()
	upsert := ev == "member-join" || ev == "member-update"
	for _, m := range members {
		ours := p.ours(m.Role)
		switch {
		case m.Name == p.self:
			d.ignored = append(d.ignored, m.Name)
		case nodestore.ValidName(m.Name) != nil:
			// A name the registry can never hold: an error for a member
			// of the roles, nothing for others (never registered).
			if ours {
				d.rejected = append(d.rejected, rejection{m.Line, m.Name, nodestore.ValidName(m.Name)})
			} else {
				d.ignored = append(d.ignored, m.Name)
			}
		case upsert && !ours:
			if ev == "member-update" {
				d.want.remove = append(d.want.remove, m.Name) // moved out of the roles
			} else {
				d.ignored = append(d.ignored, m.Name)
			}
			if w := roleNearMiss(m.Name, m.Role, p.roles); w != "" {
				d.warnings = append(d.warnings, w)
			}
		case upsert && !m.Addr.IsValid():
			d.rejected = append(d.rejected, rejection{m.Line, m.Name, fmt.Errorf("address %q is not an IP address", m.BadAddr)})
		case upsert:
			d.want.add = append(d.want.add, nodestore.Node{Name: m.Name, Addr: m.Addr, Role: m.Role, Tags: m.Tags})
			if w := badPort(m.Name, m.Tags); w != "" {
				d.warnings = append(d.warnings, w)
			}
			if w := badWeight(m.Name, m.Tags); w != "" {
				d.warnings = append(d.warnings, w)
			}
			if p.anyRole() && (m.Role == "" || m.Role == p.selfRole) {
				wild = append(wild, m.Name)
			}
		case ev == "member-failed" && ours && p.statuses(serfrpc.StatusFailed):
			d.ignored = append(d.ignored, m.Name)
		default:
			d.want.remove = append(d.want.remove, m.Name)
		}
	}
	return d
}

// anyRole reports whether every role is selected (--role '*').
func (p policy) anyRole() bool { return slices.Contains(p.roles, "*") }

// wildcardWarning says what --role '*' registers that is rarely meant: a
// member without a role, and one with this balancer's own role (another
// balancer), which would then balance traffic to itself.
func (p policy) wildcardWarning(nodes []string) string {
	if len(nodes) == 0 {
		return ""
	}
	what := "without a role"
	if p.selfRole != "" {
		what += fmt.Sprintf(" or with this balancer's own role %q (other balancers)", p.selfRole)
	}
	return fmt.Sprintf("--role '*' registers every member %s: %s; hint: list the backend roles instead, e.g. --role api,web", what, names(nodes))
}

// roleNearMiss warns about a member whose role differs from a selected
// one only in case: roles are compared exactly, as Serf's tags are.
func roleNearMiss(name, role string, roles []string) string {
	for _, r := range roles {
		if role != r && strings.EqualFold(role, r) {
			return fmt.Sprintf("member %s has role %q, not %q: roles are case-sensitive, so it is not registered", name, role, r)
		}
	}
	return ""
}

// badPort warns about a port tag that is not a port number: the template
// then falls back to its default port, which is rarely what was meant.
func badPort(name string, tags map[string]string) string {
	v, ok := tags["port"]
	if !ok {
		return ""
	}
	if render.Port(v) != "" {
		return ""
	}
	return fmt.Sprintf("node %s: port tag %q is not a port number (1-65535); the template's default port is used", name, v)
}

// badWeight warns about a weight tag that is not a HAProxy weight: the
// template's n.weight is then empty and the server gets the default weight.
func badWeight(name string, tags map[string]string) string {
	v, ok := tags["weight"]
	if !ok || render.Weight(v) != "" {
		return ""
	}
	return fmt.Sprintf("node %s: weight tag %q is not a HAProxy weight (0-256); n.weight is empty, so the template's default weight is used", name, v)
}

// clusterState is what the agent's member list calls for.
type clusterState struct {
	want []nodestore.Node // counted members of the roles, minus self, by name
	// leaving are the members of the roles that Serf lists as leaving
	// (when leaving does not count): kept if registered, never added.
	// Serf lists a member as leaving from its leave intent until its
	// leave completes, which the member-leave event reports; the node
	// still serves meanwhile (a rolling deploy keeps its app up until its
	// removal is handled), and Serf has been seen to list a member that
	// had just rejoined, and served, as leaving. So the event removes it,
	// not a sync that runs in between.
	leaving  map[string]bool
	rejected []rejection
	warnings []string
	self     *serfrpc.Member
	alone    bool // the agent knows no member but itself
}

// decideCluster selects from the agent's members those the registry
// should hold: members of the roles whose status counts, minus the
// agent's own node.
func decideCluster(ms []serfrpc.Member, p policy) clusterState {
	var cs clusterState
	others := 0
	for i, m := range ms {
		self := m.Self || m.Name == p.self
		if self {
			cs.self = &ms[i]
		} else {
			others++
		}
		role := m.Tags["role"]
		if !self && p.ours(role) && m.Status == serfrpc.StatusLeaving && !p.statuses(m.Status) {
			if cs.leaving == nil {
				cs.leaving = map[string]bool{}
			}
			cs.leaving[m.Name] = true
		}
		if self || !p.ours(role) || !p.statuses(m.Status) {
			continue
		}
		if err := nodestore.ValidName(m.Name); err != nil {
			cs.rejected = append(cs.rejected, rejection{Name: m.Name, Err: err})
			continue
		}
		if !m.Addr.IsValid() {
			cs.rejected = append(cs.rejected, rejection{Name: m.Name, Err: fmt.Errorf("no valid address")})
			continue
		}
		cs.want = append(cs.want, nodestore.Node{Name: m.Name, Addr: m.Addr, Role: role, Tags: maps.Clone(m.Tags)})
	}
	cs.alone = others == 0
	slices.SortFunc(cs.want, func(a, b nodestore.Node) int { return strings.Compare(a.Name, b.Name) })
	if p.anyRole() {
		// As for member events: the sync command runs outside Serf, so the
		// balancer's own role comes from the agent's entry for itself.
		if p.selfRole == "" && cs.self != nil {
			p.selfRole = cs.self.Tags["role"]
		}
		var wild []string
		for _, n := range cs.want {
			if n.Role == "" || n.Role == p.selfRole {
				wild = append(wild, n.Name)
			}
		}
		if w := p.wildcardWarning(wild); w != "" {
			cs.warnings = append(cs.warnings, w)
		}
	}
	return cs
}

// compare returns the changes that turn the registry have into want,
// keeping the registered nodes named in keep as they are.
func compare(have, want []nodestore.Node, keep map[string]bool) changes {
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
		if _, gone := cur[n.Name]; gone && !keep[n.Name] {
			d.remove = append(d.remove, n.Name)
		}
	}
	return d
}
