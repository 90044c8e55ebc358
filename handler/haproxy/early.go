package haproxy

// Adds ahead of the whole file. A member that joins should answer through
// HAProxy as soon as possible, and the whole file (the registry listed, the
// template rendered over it, compared with the installed file) costs what
// the cluster's size costs. The template rendered over the joining members
// alone already says what their server lines are, in the backends the
// installed file has: Adds takes those lines, and nothing else, to be
// added before the whole file is rendered. The whole file's Diff then
// settles them (Settle): the caller verifies HAProxy against it, and
// reloads when it says otherwise.

import (
	"fmt"
	"slices"
)

// Adds returns the plan that adds to a running HAProxy, loaded from
// installed, the servers of partial (the same template rendered over just
// the joining members) that mine claims (for the caller: their address is
// a joining member's), in each backend or listen section that installed
// has with the same balance algorithm and hash-type and no default-server,
// under a name that section lacks, and that HAProxy can add at runtime as
// written. A server that fails any of these is left out: the Diff of the
// whole file decides what becomes of it.
func Adds(installed, partial []byte, mine func(Server) bool) Plan {
	// Of the installed file's servers only the names count here: a join
	// need not wait for the whole parse (~8 ms of CPU at 10,000 servers),
	// which the caller makes later, beside the render, for the Diff.
	o, p := parseNames(string(installed)), parse(string(partial))
	var plan Plan
	seen := map[string]bool{}
	for i := range p.Sections {
		ps := &p.Sections[i]
		if !isProxy(ps.Kind) {
			continue
		}
		if seen[ps.Name] {
			return nil // two proxies of one name: HAProxy refuses the file
		}
		seen[ps.Name] = true
		if len(ps.Servers) == 0 {
			continue
		}
		os := o.Section(ps.Name)
		if os == nil || os.Kind != ps.Kind || os.Balance != ps.Balance || os.HashType != ps.HashType ||
			os.DefaultServer != 0 || ps.DefaultServer != 0 {
			continue
		}
		bp := BackendPlan{Backend: os.Name}
		for _, s := range ps.Servers {
			taken := func(x Server) bool { return x.Name == s.Name }
			if !mine(s) || slices.ContainsFunc(os.Servers, taken) || slices.ContainsFunc(bp.Add, taken) {
				continue
			}
			if checkLive(os, BackendPlan{Backend: os.Name, Add: []Server{s}}) == nil {
				bp.Add = append(bp.Add, s)
			}
		}
		if len(bp.Add) > 0 {
			plan = append(plan, bp)
		}
	}
	return plan
}

// Settle takes the adds done ahead (early, applied) out of plan, the
// Diff of the installed file and the whole new one. It fails when the new
// file does not add one of them exactly as it was added: the caller then
// reloads, so that HAProxy runs the file.
func Settle(plan, early Plan) (Plan, error) {
	plan = slices.Clone(plan)
	for _, eb := range early {
		i := slices.IndexFunc(plan, func(b BackendPlan) bool { return b.Backend == eb.Backend })
		for _, e := range eb.Add {
			j := -1
			if i >= 0 {
				j = slices.IndexFunc(plan[i].Add, func(s Server) bool { return s.Name == e.Name })
			}
			if j < 0 || !sameServer(plan[i].Add[j], e) {
				return nil, notLive("server %s/%s was added ahead of the whole file, which does not define it so (%s)", eb.Backend, e.Name, definedAs(plan, i, j))
			}
			plan[i].Add = slices.Delete(slices.Clone(plan[i].Add), j, j+1)
		}
	}
	return slices.DeleteFunc(plan, func(b BackendPlan) bool {
		return len(b.Add)+len(b.Remove)+len(b.Readdress)+len(b.Reweight) == 0
	}), nil
}

// definedAs says how plan's entry i, j defines the server, for Settle's
// error.
func definedAs(plan Plan, i, j int) string {
	if i < 0 || j < 0 {
		return "it does not add it"
	}
	s := plan[i].Add[j]
	return fmt.Sprintf("line %d: %s %s", s.Line, s.Address, shownKeywords(s))
}

// Undo returns the plan that takes back the adds of p: each added server
// is retired, as a removal would.
func (p Plan) Undo() Plan {
	var u Plan
	for _, b := range p {
		if len(b.Add) > 0 {
			u = append(u, BackendPlan{Backend: b.Backend, Remove: b.Add})
		}
	}
	return u
}
