package haproxy

import (
	"fmt"
	"slices"
	"strings"

	"github.com/serf-hb/serf-hb/internal/name"
)

// Plan is the live changes that turn a running HAProxy loaded from one
// file into one loaded from the next: one entry per backend with changes,
// in file order. An empty Plan means nothing to do.
type Plan []BackendPlan

// BackendPlan is the server changes of one backend (or listen section).
type BackendPlan struct {
	Backend   string
	Add       []Server // in the new file only, as defined there
	Remove    []Server // in the old file only, as defined there
	Readdress []Server // the new definition of a server whose address or port changed
	Reweight  []Server // the new definition of a server whose weight changed
}

// Backends returns the names of the backends the plan touches, for Verify.
func (p Plan) Backends() []string {
	names := make([]string, len(p))
	for i, b := range p {
		names[i] = b.Backend
	}
	return names
}

// NotLiveError says why two files differ in a way the runtime API cannot
// apply, so that HAProxy must reload the new file.
type NotLiveError struct {
	Reason string
}

func (e *NotLiveError) Error() string { return "reload needed: " + e.Reason }

func notLive(format string, args ...any) error {
	return &NotLiveError{Reason: fmt.Sprintf(format, args...)}
}

// Diff compares two renderings of haproxy.cfg. When they differ only in
// server lines of backend and listen sections, and HAProxy 2.6 can make
// each of those changes at runtime so that it ends up as if it had loaded
// the new file, Diff returns the plan; otherwise a *NotLiveError saying
// why the new file needs a reload.
func Diff(old, new []byte) (Plan, error) {
	o, n := Parse(old), Parse(new)
	if err := sameOthers(o, n); err != nil {
		return nil, err
	}
	// The other lines, section keywords included, are the same, so the
	// sections correspond one to one.
	var plan Plan
	for i := range n.Sections {
		if !isProxy(n.Sections[i].Kind) {
			continue
		}
		bp, err := diffServers(&o.Sections[i], &n.Sections[i])
		if err != nil {
			return nil, err
		}
		if len(bp.Add)+len(bp.Remove)+len(bp.Readdress)+len(bp.Reweight) > 0 {
			plan = append(plan, bp)
		}
	}
	return plan, nil
}

// sameOthers returns a *NotLiveError quoting the first line other than a
// backend's server line that differs between the files.
func sameOthers(o, n *Config) error {
	ol, nl := others(o), others(n)
	for i := 0; i < max(len(ol), len(nl)); i++ {
		if i < len(ol) && i < len(nl) && ol[i].Text == nl[i].Text {
			continue
		}
		if i < len(nl) {
			if kind, name, ok := proxyHeader(nl[i]); ok && o.Section(name) == nil {
				return notLive("new %s %s at line %d", kind, name, nl[i].Num)
			}
		}
		if i < len(ol) {
			if kind, name, ok := proxyHeader(ol[i]); ok && n.Section(name) == nil {
				return notLive("%s %s removed (line %d of the old file)", kind, name, ol[i].Num)
			}
		}
		switch {
		case i >= len(ol) || (i < len(nl) && slices.Equal(texts(nl[i+1:]), texts(ol[i:]))):
			return notLive("line %d added: %q", nl[i].Num, nl[i].Text)
		case i >= len(nl) || slices.Equal(texts(ol[i+1:]), texts(nl[i:])):
			return notLive("line %d of the old file removed: %q", ol[i].Num, ol[i].Text)
		default:
			return notLive("line %d changed: %q (was %q)", nl[i].Num, nl[i].Text, ol[i].Text)
		}
	}
	return nil
}

// proxyHeader reads a backend or listen section's keyword line.
func proxyHeader(l line) (kind, name string, ok bool) {
	f := strings.Fields(l.Text)
	if len(f) < 2 || !isProxy(f[0]) {
		return "", "", false
	}
	return f[0], f[1], true
}

func others(c *Config) []line {
	var all []line
	for _, s := range c.Sections {
		all = append(all, s.others...)
	}
	return all
}

func texts(ls []line) []string {
	t := make([]string, len(ls))
	for i, l := range ls {
		t[i] = l.Text
	}
	return t
}

// diffServers compares the servers of one backend in both files.
func diffServers(os, ns *Section) (BackendPlan, error) {
	bp := BackendPlan{Backend: ns.Name}
	if slices.EqualFunc(os.Servers, ns.Servers, sameServer) {
		return bp, nil
	}
	var err error
	if ascending(os) && ascending(ns) {
		err = walkServers(os, ns, &bp)
	} else {
		err = matchServers(os, ns, &bp)
	}
	if err != nil {
		return bp, err
	}
	return bp, checkLive(ns, bp)
}

// ascending reports whether s's server names are in strictly ascending
// order (inOrder).
func ascending(s *Section) bool { return inOrder(s.Servers, serverName) }

func serverName(s *Server) string { return s.Name }

// walkServers fills bp from two sections whose servers are in ascending
// name order, walking both at once. It finds what matchServers finds, in
// the same order.
func walkServers(os, ns *Section, bp *BackendPlan) error {
	o, n := os.Servers, ns.Servers
	return walk(len(o), len(n), func(i, j int) int { return strings.Compare(o[i].Name, n[j].Name) },
		func(i int) { bp.Remove = append(bp.Remove, o[i]) },
		func(j int) { bp.Add = append(bp.Add, n[j]) },
		func(i, j int) error { return compareServer(ns.Name, o[i], n[j], bp) })
}

// matchServers fills bp from two sections in any order, through an index
// of each by name, refusing a name defined twice.
func matchServers(os, ns *Section, bp *BackendPlan) error {
	oldBy, err := byName(os)
	if err != nil {
		return err
	}
	newBy, err := byName(ns)
	if err != nil {
		return err
	}
	for _, s := range ns.Servers {
		prev, ok := oldBy[s.Name]
		if !ok {
			bp.Add = append(bp.Add, s)
			continue
		}
		if err := compareServer(ns.Name, prev, s, bp); err != nil {
			return err
		}
	}
	for _, s := range os.Servers {
		if _, ok := newBy[s.Name]; !ok {
			bp.Remove = append(bp.Remove, s)
		}
	}
	return nil
}

// compareServer adds what changed from server prev to s, of one name in
// backend, to bp; a change HAProxy cannot take live is a *NotLiveError.
func compareServer(backend string, prev, s Server, bp *BackendPlan) error {
	if prev.Check != s.Check || !slices.Equal(prev.Keywords, s.Keywords) {
		return notLive("server %s/%s at line %d: keywords changed from %q to %q",
			backend, s.Name, s.Line, shownKeywords(prev), shownKeywords(s))
	}
	if !sameAddress(prev, s) {
		bp.Readdress = append(bp.Readdress, s)
	}
	if prev.Weight != s.Weight {
		bp.Reweight = append(bp.Reweight, s)
	}
	return nil
}

// byName indexes a section's servers by name; HAProxy refuses a file
// with two servers of one name in a backend, and so does Diff.
func byName(s *Section) (map[string]Server, error) {
	m := make(map[string]Server, len(s.Servers))
	for _, srv := range s.Servers {
		if prev, dup := m[srv.Name]; dup {
			return nil, notLive("server %s/%s defined twice (lines %d and %d)", s.Name, srv.Name, prev.Line, srv.Line)
		}
		m[srv.Name] = srv
	}
	return m, nil
}

// sameServer reports whether two server lines say the same, wherever
// they are in the file.
func sameServer(a, b Server) bool {
	return a.Name == b.Name && a.Address == b.Address && a.Weight == b.Weight &&
		a.Check == b.Check && slices.Equal(a.Keywords, b.Keywords)
}

func sameAddress(a, b Server) bool {
	if a.IP.IsValid() && b.IP.IsValid() {
		return a.IP == b.IP && a.Port == b.Port
	}
	return a.Address == b.Address
}

func shownKeywords(s Server) string {
	kw := s.Keywords
	if s.Check {
		kw = append([]string{"check"}, kw...)
	}
	return strings.Join(kw, " ")
}

// checkLive returns a *NotLiveError if HAProxy 2.6 cannot apply bp to
// backend ns at runtime exactly as a reload of the new file would.
func checkLive(ns *Section, bp BackendPlan) error {
	if !cliSafe(ns.Name) {
		return notLive("backend name %q cannot be sent on the runtime API", ns.Name)
	}
	for _, r := range bp.Remove {
		if !cliSafe(r.Name) {
			return notLive("server name %q cannot be sent on the runtime API", r.Name)
		}
	}
	if len(bp.Add)+len(bp.Remove)+len(bp.Reweight) > 0 && !dynamic(ns.Balance, ns.HashType) {
		algo, hint := "balance "+ns.Balance, ""
		if ns.Balance != "static-rr" {
			algo += " with hash-type " + ns.HashType
			hint = "; hint: 'hash-type consistent' makes it dynamic"
		}
		return notLive("backend %s (line %d): %s is static, and HAProxy adds, removes and reweights servers at runtime only under a dynamic algorithm%s",
			ns.Name, ns.Line, algo, hint)
	}
	if len(bp.Add) > 0 && ns.DefaultServer != 0 {
		return notLive("backend %s: server %s (line %d) would not inherit default-server (line %d) when added at runtime",
			ns.Name, bp.Add[0].Name, bp.Add[0].Line, ns.DefaultServer)
	}
	for _, s := range bp.Readdress {
		if !s.IP.IsValid() {
			return notLive("server %s/%s at line %d: address %q is not IP:PORT (a server changed at runtime resolves no names and maps no ports)",
				ns.Name, s.Name, s.Line, s.Address)
		}
	}
	for _, s := range bp.Add {
		if err := checkAdd(ns.Name, s); err != nil {
			return err
		}
	}
	for _, s := range bp.Add {
		for _, r := range bp.Remove {
			if sameAddress(s, r) && s.Check == r.Check && slices.Equal(s.Keywords, r.Keywords) {
				return notLive("server %s/%s renamed to %s (line %d)", ns.Name, r.Name, s.Name, s.Line)
			}
		}
	}
	return nil
}

// checkAdd returns a *NotLiveError if server s cannot be added at runtime
// as the file defines it.
func checkAdd(backend string, s Server) error {
	at := fmt.Sprintf("server %s/%s at line %d", backend, s.Name, s.Line)
	if !name.Valid(s.Name) {
		return notLive("%s: name is not made of A-Z a-z 0-9 _ . : -", at)
	}
	if !s.IP.IsValid() {
		return notLive("%s: address %q is not IP:PORT (a server added at runtime resolves no names and maps no ports)", at, s.Address)
	}
	for _, kw := range keywordSpans(s.Keywords) {
		switch {
		case refusedKeywords[kw[0]]:
			return notLive("%s: HAProxy 2.6 refuses keyword %q for a server added at runtime", at, kw[0])
		case unsafeKeywords[kw[0]] != "":
			return notLive("%s: keyword %q: %s", at, kw[0], unsafeKeywords[kw[0]])
		case !liveKeywords[kw[0]]:
			return notLive("%s: keyword %q is not one serf-hb adds at runtime", at, kw[0])
		}
		for _, w := range kw {
			if !cliSafe(w) {
				return notLive("%s: %q cannot be sent on the runtime API", at, w)
			}
		}
	}
	return nil
}

// dynamic reports whether HAProxy 2.6 lets servers be added to a backend
// balancing with algorithm balance and hash-type hashType (measured:
// static-rr and map-based hashing answer "Backend must use a dynamic load
// balancing to support dynamic servers."; random always hashes
// consistently).
func dynamic(balance, hashType string) bool {
	algo, _, _ := strings.Cut(balance, " ")
	algo, _, _ = strings.Cut(algo, "(")
	switch algo {
	case "roundrobin", "leastconn", "first", "random":
		return true
	case "static-rr":
		return false
	}
	return hashType == "consistent"
}

// cliSafe reports whether w reaches the runtime API as one word: its
// parser splits on spaces, ends a command at ';' and newlines, and treats
// quotes and backslashes specially.
func cliSafe(w string) bool {
	if w == "" {
		return false
	}
	for _, c := range []byte(w) {
		if c <= ' ' || c >= 0x7f || strings.IndexByte(";#'\"\\$", c) >= 0 {
			return false
		}
	}
	return true
}
