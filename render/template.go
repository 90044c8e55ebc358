// Package render turns registry data into a configuration file and installs
// it: Execute is pure (data in, bytes out); Stage compares and stages the
// new file next to the destination, the caller validates the staged file,
// and Commit swaps it in atomically, keeping the old file's mode and owner.
//
// Invariant: the destination is at every moment either the old complete
// file or the new complete, validated file.
package render

import (
	_ "embed"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/flosch/pongo2/v6"
)

//go:embed haproxy.cfg.tmpl
var defaultTemplate []byte

// DefaultName is how errors name the embedded default template.
const DefaultName = "(embedded haproxy.cfg template)"

func init() {
	// This is a configuration file, not a web page: pongo2's autoescaping
	// would HTML-escape node data ("&" -> "&amp;") and break the config.
	// Autoescaping stays on, but "escape" now means "make this value one
	// HAProxy word": a value that is not a plain token is double-quoted
	// with HAProxy's own escapes, so tag values reach the config as data,
	// never as directives. Templates opt out per value with |safe.
	if err := pongo2.ReplaceFilter("escape", filterWord); err != nil {
		panic(err) // the built-in filter always exists
	}
}

// Node is one backend as templates see it.
type Node struct {
	Name string
	Addr string
	Role string
	Tags map[string]string
}

// Self describes the node running serf-hb (SERF_SELF_NAME, SERF_SELF_ROLE
// and SERF_TAG_*).
type Self struct {
	Name string
	Role string
	Tags map[string]string
}

// Data is everything a template can use.
type Data struct {
	Nodes []Node // sorted by name by Execute
	Self  Self
	// Roles are the roles selected for registration, the main one first
	// (the default template sends unrouted traffic to it). Role is
	// Roles[0], kept for templates written when there was one: Execute
	// fills in whichever of the two is left empty, and fails when both
	// are given and disagree.
	Roles []string
	Role  string
	// HAProxy says how serf-hb reaches the running HAProxy, so that a
	// template can declare what the live path needs.
	HAProxy HAProxy
}

// HAProxy is the template's haproxy variable.
type HAProxy struct {
	// Socket is the runtime API socket serf-hb uses (--haproxy-socket):
	// the template declares it as a stats socket at level admin. "" when
	// changes are not applied live.
	Socket string
	// StateFile is where serf-hb dumps server states right before a
	// reload, for server-state-file.
	StateFile string
}

// Template is a parsed template, ready to run any number of times, though
// not concurrently.
type Template struct {
	name string
	tpl  *pongo2.Template
	// uses: the context variables the template refers to, as the strict
	// check found them; all: it may refer to any (it pulls in other
	// templates, whose text is not checked). The lab's addresses list
	// and by_role are built only for a template that uses them
	// (addresses is a map per node: 3.5 MB and a tenth of a render at
	// 10,000 nodes).
	uses map[string]bool
	all  bool
}

// Default returns the embedded HAProxy template.
func Default() (*Template, error) {
	return parse(DefaultName, defaultTemplate, ".")
}

// DefaultSource returns the embedded HAProxy template's text.
func DefaultSource() []byte { return append([]byte(nil), defaultTemplate...) }

// ParseFile parses the template in path; {% include %} paths are resolved
// relative to its directory.
func ParseFile(path string) (*Template, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read template: %w", err)
	}
	return parse(path, src, filepath.Dir(path))
}

func parse(name string, src []byte, dir string) (*Template, error) {
	loader, err := pongo2.NewLocalFileSystemLoader(dir)
	if err != nil {
		return nil, fmt.Errorf("parse template %s: %v", name, err)
	}
	guard := &guardedLoader{TemplateLoader: loader}
	set := pongo2.NewSet("serf-hb", guard)
	// Block tags ({% for %}, {% if %}) on lines of their own leave no blank
	// lines and no indentation behind, so a template reads like the file it
	// produces; trim.go rewrites the text so that TrimBlocks drops only
	// their newlines. LStripBlocks stays off: it strips before inline tags
	// too.
	set.Options.TrimBlocks = true
	// pongo2 may hang on a template it has not parsed yet, so the lexer
	// runs first; the check then needs the template parsed.
	segs := lex(string(src))
	if err := checkErr(name, hangs(segs)); err != nil {
		return nil, err
	}
	tpl, err := set.FromString(trimLines(string(src), segs))
	if guard.refused != nil {
		return nil, guard.refused // pongo2 says only "unable to resolve template"
	}
	if err != nil {
		return nil, fmt.Errorf("parse template %s: %v", name, err)
	}
	uses, all, errs := check(segs)
	if err := checkErr(name, errs); err != nil {
		return nil, err
	}
	return &Template{name: name, tpl: tpl, uses: uses, all: all}, nil
}

// guardedLoader reads the templates a template pulls in ({% include %},
// {% extends %}, {% import %}), refusing those pongo2 would hang on.
type guardedLoader struct {
	pongo2.TemplateLoader
	refused error
}

func (l *guardedLoader) Get(path string) (io.Reader, error) {
	r, err := l.TemplateLoader.Get(path)
	if err != nil {
		return nil, err
	}
	src, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	segs := lex(string(src))
	if err := checkErr(path, hangs(segs)); err != nil {
		l.refused = err
		return nil, err
	}
	return strings.NewReader(trimLines(string(src), segs)), nil
}

// mayUse reports whether the template may refer to the context variable.
func (t *Template) mayUse(name string) bool { return t.all || t.uses[name] }

// Name returns the name the template was parsed under.
func (t *Template) Name() string { return t.name }

// Execute renders the template with d. The context holds:
//
//	nodes      list of {name, addr, role, tags, port, weight}, sorted by
//	           name; port is the "port" tag when it is a number from 1 to
//	           65535, weight the "weight" tag when it is one from 0 to 256,
//	           else ""; tags is the map of Serf tags (a missing one is "")
//	addresses  the lab's list of {host, ip}, in the same order
//	self       {name, role, tags} of the node running serf-hb
//	role       the main selected role (Roles[0])
//	roles      the selected roles, sorted
//	by_role    map from role to its list of nodes, sorted by name: every
//	           selected role is a key, with an empty list if it has no
//	           nodes, and so is every other role a node has
//	           ({% for n in by_role.web %}, {% for n in by_role[r] %},
//	           {% for role, list in by_role sorted %})
//	haproxy    {socket, state_file}: the runtime API socket serf-hb
//	           applies changes through ("" when it reloads), and the
//	           server state file it dumps before a reload
//
// and, beside pongo2's filters:
//
//	group_by:"TAG"  on a list of nodes: the list of {key, nodes} groups by
//	                the tag's value, sorted by key; nodes without the tag
//	                are in the group with key ""
//	ident           the value unchanged when it can be a HAProxy name
//	                (backend, server, ACL: letters, digits, _ - . :),
//	                else a template error
//	required[:"X"]  the value unchanged when it is not empty, else a
//	                template error (naming X when given)
//
// Referring to anything else (n.address, self.nmae, nodse) is an error
// when the template is parsed, and so is printing haproxy.socket or
// haproxy.state_file outside an {% if %} testing it without |required
// or |default (check.go).
func (t *Template) Execute(d Data) ([]byte, error) {
	roles, err := selectedRoles(&d)
	if err != nil {
		return nil, fmt.Errorf("execute template %s: %v", t.name, err)
	}
	nodes := d.Nodes
	byName := func(i, j int) bool { return nodes[i].Name < nodes[j].Name }
	// The handler passes the registry sorted already: copy and sort only
	// when the list is not.
	if !sort.SliceIsSorted(nodes, byName) {
		nodes = append([]Node(nil), d.Nodes...)
		sort.Slice(nodes, byName)
	}
	list := make([]pongo2.Context, len(nodes))
	var addrs []pongo2.Context
	if t.mayUse("addresses") {
		addrs = make([]pongo2.Context, len(nodes))
	}
	for i, n := range nodes {
		tags := n.Tags
		if tags == nil {
			tags = map[string]string{}
		}
		// Boxed once for both lists: each conversion to an interface
		// allocates, and this loop runs once per node.
		var name, addr any = n.Name, n.Addr
		list[i] = pongo2.Context{
			"name": name, "addr": addr, "role": n.Role, "tags": tagMap(tags), "port": Port(tags["port"]),
			"weight": Weight(tags["weight"]),
		}
		if addrs != nil {
			addrs[i] = pongo2.Context{"host": name, "ip": addr}
		}
	}
	var byRole map[string][]pongo2.Context
	if t.mayUse("by_role") {
		byRole = groupByRole(nodes, list, roles)
	}
	selfTags := d.Self.Tags
	if selfTags == nil {
		selfTags = map[string]string{}
	}
	ctx := pongo2.Context{
		"nodes":     list,
		"addresses": addrs,
		"self":      pongo2.Context{"name": d.Self.Name, "role": d.Self.Role, "tags": tagMap(selfTags)},
		"role":      d.Role,
		"roles":     roles,
		"by_role":   byRole,
		"haproxy":   pongo2.Context{"socket": d.HAProxy.Socket, "state_file": d.HAProxy.StateFile},
	}
	out, err := execute(t.tpl, ctx)
	if err != nil {
		return nil, fmt.Errorf("execute template %s: %v", t.name, err)
	}
	return out, nil
}

// tagMap is a node's tags as templates see them: a map (n.tags.dc,
// {% for k, v in n.tags sorted %}) that prints as "k=v,k2=v2", sorted, as
// serf-hb nodes shows tags, rather than as pongo2's "<map[string]string
// Value>".
type tagMap map[string]string

func (m tagMap) String() string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(m[k])
	}
	return b.String()
}

// selectedRoles fills in whichever of d.Role and d.Roles is empty, and
// returns the roles sorted, without repeats.
func selectedRoles(d *Data) ([]string, error) {
	switch {
	case len(d.Roles) == 0 && d.Role != "":
		d.Roles = []string{d.Role}
	case len(d.Roles) > 0 && d.Role == "":
		d.Role = d.Roles[0]
	case len(d.Roles) > 0 && d.Role != d.Roles[0]:
		return nil, fmt.Errorf("role %q is not the first of roles %q", d.Role, d.Roles)
	}
	roles := append([]string(nil), d.Roles...)
	sort.Strings(roles)
	return slices.Compact(roles), nil
}

// groupByRole maps each role to its nodes, in the order of list; every
// selected role has an entry.
func groupByRole(nodes []Node, list []pongo2.Context, selected []string) map[string][]pongo2.Context {
	count := make(map[string]int, len(selected))
	for _, r := range selected {
		count[r] = 0
	}
	for _, n := range nodes {
		count[n.Role]++
	}
	// One allocation per role, of the right size: this runs per render
	// over the whole registry.
	out := make(map[string][]pongo2.Context, len(count))
	for r, c := range count {
		out[r] = make([]pongo2.Context, 0, c)
	}
	for i, n := range nodes {
		out[n.Role] = append(out[n.Role], list[i])
	}
	return out
}

// execute runs tpl, turning a panic inside pongo2 into an error: some
// templates make it panic at run time ({{ 1/0 }}, {% cycle %} without
// values, truncatechars:"-1"), and that is a template error to report
// like any other, not a crash with exit status 2 and a stack trace.
func execute(tpl *pongo2.Template, ctx pongo2.Context) (out []byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			out, err = nil, fmt.Errorf("pongo2 panicked: %v", p)
		}
	}()
	// pongo2 applies TrimBlocks to the template's tokens, in place, at the
	// start of every run (before anything can fail): a second run would
	// strip one more newline after each block tag. Once is what the option
	// means.
	defer func() { tpl.Options.TrimBlocks = false }()
	return tpl.ExecuteBytes(ctx)
}

// Weight returns v when it is a valid HAProxy server weight (0-256),
// else "".
func Weight(v string) string {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 256 || strconv.Itoa(n) != v {
		return ""
	}
	return v
}

// Port returns v when it is a valid TCP port number in its canonical
// spelling (the port tag templates see as n.port), else "".
func Port(v string) string {
	// Atoi takes only [+-]?[0-9]+, so a first digit of 1-9 is what makes v
	// the canonical spelling of n (no sign, no leading zero), without
	// formatting n back for a comparison.
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 65535 || v[0] < '1' || v[0] > '9' {
		return ""
	}
	return v
}

// filterWord is the autoescape filter: it returns its input as one HAProxy
// configuration word.
func filterWord(in *pongo2.Value, _ *pongo2.Value) (*pongo2.Value, *pongo2.Error) {
	return pongo2.AsSafeValue(Word(in.String())), nil
}

// Word quotes s so that HAProxy's configuration parser reads it back as the
// single word s: plain tokens are returned as they are, anything else is
// double-quoted, with \ " $ and control characters escaped.
func Word(s string) string {
	if s == "" || plain(s) {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\' || c == '$':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			strings.IndexByte("_.:/@%+=,~^-[]", c) >= 0) {
			return false
		}
	}
	return true
}

// ParseBytes parses src, naming it name in errors; {% include %} paths are
// resolved relative to the working directory.
func ParseBytes(name string, src []byte) (*Template, error) {
	return parse(name, src, ".")
}
