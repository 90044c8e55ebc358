package render

// Strict templates. pongo2 resolves a variable, map key or struct field that
// does not exist to nil and renders it as "": a typo such as {{ n.address }}
// becomes `server w1 :3000 check`, which haproxy -c accepts. It has no hook
// to change that (no undefined-variable handler; struct fields are looked up
// by exact, capitalised name), and at run time a missing attribute and a
// missing tag are the same nil. So the template's text is read a second
// time when it is parsed, and every variable reference in it is checked
// against the schema of the context Execute builds: an attribute of a node
// that does not exist, or a variable that nothing defines, is a parse error
// naming the file, line and column. Tags stay free (n.tags is a map: a
// missing tag is "", which |default and {% if %} are for), and so does
// anything whose type the check cannot know (macro arguments, values from
// most filters, included templates, which it does not read).
//
// Values that are empty unless a setting is given (haproxy.socket and
// haproxy.state_file, empty without --haproxy-socket) must not be printed
// bare: `stats socket {{ haproxy.socket }} mode 600` from a handler line
// without the flag is `stats socket  mode 600`, which haproxy -c may
// accept. Printed in {{ }}, such a value must be inside an {% if %} whose
// condition is it (alone or and-ed with others: {% if haproxy.socket %}),
// or go through |required (the render fails when it is empty) or
// |default; anything else is a parse error. A value passed through a
// variable ({% with s=haproxy.socket %}) is not followed.
//
// The check costs nothing per render, and pongo2 has already accepted the
// template, so the lexer (lex.go) may assume well-formed input (it must
// still never panic: FuzzCheck).

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// kind is what a value is, as far as the check knows.
type kind uint8

const (
	kindAny    kind = iota // not known here: anything goes
	kindString             // a string: indexable, no attributes
	kindList               // elem is the type of its items
	kindMap                // any key is fine; elem is the type of its values
	kindObject             // a fixed set of attributes
)

// schema is the type of a value in the template context.
type schema struct {
	kind  kind
	what  string // how messages name a value of this type: "node", "a list of nodes"
	attrs []attr // kindObject, in the order messages list them
	elem  *schema
	// hint follows "has no attribute" for objects with tags: the attribute
	// may well be meant as a tag.
	tagHint bool
}

type attr struct {
	name string
	typ  *schema
}

func (s *schema) attr(name string) *schema {
	for _, a := range s.attrs {
		if a.name == name {
			return a.typ
		}
	}
	return nil
}

func (s *schema) names() string {
	names := make([]string, len(s.attrs))
	for i, a := range s.attrs {
		names[i] = a.name
	}
	return strings.Join(names, ", ")
}

func listOf(elem *schema) *schema {
	return &schema{kind: kindList, what: "a list of " + plural(elem.what), elem: elem}
}

func plural(what string) string {
	if strings.HasSuffix(what, "s") {
		return what + "es"
	}
	return what + "s"
}

var (
	anyT    = &schema{kind: kindAny}
	stringT = &schema{kind: kindString, what: "string"}
	tagsT   = &schema{kind: kindMap, what: "tags", elem: stringT}
	nodeT   = &schema{kind: kindObject, what: "node", tagHint: true, attrs: []attr{
		{"name", stringT}, {"addr", stringT}, {"role", stringT}, {"tags", tagsT}, {"port", stringT}, {"weight", stringT},
	}}
	nodesT = listOf(nodeT)
	selfT  = &schema{kind: kindObject, what: "self", tagHint: true, attrs: []attr{
		{"name", stringT}, {"role", stringT}, {"tags", tagsT},
	}}
	addressT = &schema{kind: kindObject, what: "address", attrs: []attr{{"host", stringT}, {"ip", stringT}}}
	groupT   = &schema{kind: kindObject, what: "group", attrs: []attr{{"key", stringT}, {"nodes", nodesT}}}
	// forloopT is pongo2's loop struct, whose fields are capitalised
	// (forloop.Counter): Django's forloop.counter is nil there, silently.
	forloopT = &schema{kind: kindObject, what: "forloop"}
	// contextT is what Execute puts in the template's context.
	contextT = &schema{kind: kindObject, what: "context", attrs: []attr{
		{"nodes", nodesT},
		{"addresses", listOf(addressT)},
		{"self", selfT},
		{"role", stringT},
		{"roles", listOf(stringT)},
		{"by_role", &schema{kind: kindMap, what: "by_role", elem: nodesT}},
		{"haproxy", &schema{kind: kindObject, what: "haproxy", attrs: []attr{{"socket", stringT}, {"state_file", stringT}}}},
	}}
)

func init() {
	forloopT.attrs = []attr{
		{"Counter", anyT}, {"Counter0", anyT}, {"Revcounter", anyT}, {"Revcounter0", anyT},
		{"First", anyT}, {"Last", anyT}, {"Parentloop", forloopT},
	}
}

// optional are the context values that are empty unless a setting is
// given, with the setting and the values an {% if %} may test to prove
// them set.
var optional = map[string]struct {
	setting string
	guards  []string
}{
	"haproxy.socket":     {"--haproxy-socket", []string{"haproxy.socket"}},
	"haproxy.state_file": {"--haproxy-socket", []string{"haproxy.socket", "haproxy.state_file"}},
}

// checkError is one strict-mode finding.
type checkError struct {
	line, col int
	msg       string
}

// maxCheckErrors bounds the report: a template with a systematic typo
// would otherwise list every line.
const maxCheckErrors = 10

// check reads a template's segments (one that pongo2 has parsed) and
// reports every reference to a variable or attribute the context Execute
// builds cannot have. It also says which context variables the template
// uses, and whether it may use any (it pulls in other templates, or uses a
// tag the check does not know).
func check(segs []segment) (uses map[string]bool, all bool, errs []checkError) {
	c := &checker{uses: map[string]bool{}, bound: map[string]bool{}}
	// Names a tag binds anywhere: a macro sees variables set after its
	// definition, and a block of a template that extends another runs
	// where that template put it. Such a name is never an unknown
	// variable, only one of unknown type.
	for _, s := range segs {
		if s.tag && len(s.toks) > 0 {
			for _, n := range parseTag(s.toks).binds {
				c.bound[n.name.val] = true
			}
		}
	}
	c.frames = []*frame{{vars: map[string]*schema{}}}
	for i := 0; i < len(segs); i++ {
		s := segs[i]
		if !s.tag {
			c.optional(s.toks)
			c.expr(s.toks)
			continue
		}
		if len(s.toks) == 0 {
			continue
		}
		if s.toks[0].val == "comment" {
			for i < len(segs) && !(segs[i].tag && len(segs[i].toks) > 0 && segs[i].toks[0].val == "endcomment") {
				i++
			}
			continue
		}
		c.tag(parseTag(s.toks))
	}
	return c.uses, c.all, c.errs
}

// tagArgs is one {% %} taken apart.
type tagArgs struct {
	name  token
	exprs [][]token // evaluated where the tag stands
	binds []binding
	// for: the loop's expression, whether it is sorted.
	loop   []token
	sorted bool
	known  bool // a tag of pongo2's the check understands
}

// binding is a name a tag defines; from is the expression whose value it
// takes (nil: unknown type).
type binding struct {
	name token
	from []token
}

// noArgs are pongo2's tags whose arguments, if any, are not expressions.
var noArgs = map[string]bool{
	"else": true, "empty": true, "endfor": true, "endif": true, "endwith": true, "endmacro": true,
	"endifchanged": true, "endifequal": true, "endifnotequal": true, "endblock": true,
	"endfilter": true, "endautoescape": true, "endspaceless": true, "endcomment": true,
	"autoescape": true, "spaceless": true, "templatetag": true, "lorem": true, "now": true,
}

// parseTag takes a tag apart by pongo2's grammar for it (tags_*.go).
func parseTag(toks []token) tagArgs {
	t := tagArgs{name: toks[0], known: true}
	args := toks[1:]
	switch name := t.name.val; {
	case noArgs[name]:
	case name == "if" || name == "elif" || name == "ifchanged" || name == "ifequal" ||
		name == "ifnotequal" || name == "firstof":
		t.exprs = [][]token{args}
	case name == "for":
		// for KEY [, VALUE] in EXPR [reversed] [sorted]
		in := indexOf(args, func(x token) bool { return x.kind == tokKeyword && x.val == "in" })
		if in < 0 {
			break
		}
		for _, x := range args[:in] {
			if x.kind == tokIdent {
				t.binds = append(t.binds, binding{name: x})
			}
		}
		loop := args[in+1:]
		for _, flag := range []string{"sorted", "reversed"} {
			if n := len(loop); n > 1 && loop[n-1].kind == tokIdent && loop[n-1].val == flag {
				loop = loop[:n-1]
				t.sorted = t.sorted || flag == "sorted"
			}
		}
		t.loop = loop
	case name == "set":
		// set NAME = EXPR
		if len(args) >= 2 && args[1].is("=") {
			t.binds = []binding{{name: args[0], from: args[2:]}}
		}
	case name == "with":
		if indexOf(args, func(x token) bool { return x.kind == tokKeyword && x.val == "as" }) >= 0 {
			// with EXPR as NAME [EXPR as NAME ...]
			for len(args) > 0 {
				as := indexOf(args, func(x token) bool { return x.kind == tokKeyword && x.val == "as" })
				if as < 0 || as+1 >= len(args) {
					break
				}
				t.binds = append(t.binds, binding{name: args[as+1], from: args[:as]})
				args = args[as+2:]
			}
			break
		}
		t.binds = assignments(args)
	case name == "macro":
		// macro NAME(ARG[=DEFAULT], ...) [export]
		if len(args) == 0 {
			break
		}
		t.binds = []binding{{name: args[0]}}
		for _, a := range assignments(args[1:]) {
			t.binds = append(t.binds, binding{name: a.name})
			t.exprs = append(t.exprs, a.from)
		}
		for i, x := range args[1:] {
			// Arguments without a default: an identifier after ( or ,
			// that no = follows.
			if x.kind == tokIdent && args[i].kind == tokSymbol && (args[i].val == "(" || args[i].val == ",") &&
				(i+2 >= len(args) || !args[i+2].is("=")) {
				t.binds = append(t.binds, binding{name: x})
			}
		}
	case name == "include":
		// include "FILE"|EXPR [if_exists] [with NAME=EXPR ... [only]]
		with := indexOf(args, func(x token) bool { return x.kind == tokIdent && x.val == "with" })
		file := args
		if with >= 0 {
			file = args[:with]
			for _, a := range assignments(args[with+1:]) {
				t.exprs = append(t.exprs, trimFlag(a.from, "only"))
			}
		}
		t.exprs = append(t.exprs, trimFlag(file, "if_exists"))
	case name == "cycle" || name == "widthratio":
		// cycle EXPR... [as NAME [silent]]; widthratio A B C [as NAME]
		as := indexOf(args, func(x token) bool { return x.kind == tokKeyword && x.val == "as" })
		if as >= 0 {
			if as+1 < len(args) {
				t.binds = []binding{{name: args[as+1]}}
			}
			args = args[:as]
		}
		t.exprs = [][]token{args}
	case name == "filter":
		// filter NAME[:ARG]|NAME[:ARG]...: only the arguments are expressions.
		for i, x := range args {
			if x.is(":") {
				end := i + 1
				for end < len(args) && !args[end].is("|") {
					end++
				}
				t.exprs = append(t.exprs, args[i+1:end])
			}
		}
	case name == "import":
		// import "FILE" NAME [as ALIAS], ...: all names are macros.
		for i, x := range args {
			if x.kind == tokIdent && (i+1 == len(args) || !(args[i+1].kind == tokKeyword && args[i+1].val == "as")) {
				t.binds = append(t.binds, binding{name: x})
			}
		}
	case name == "block":
		// block NAME: the block's super() is {{ block.Super }}.
		t.binds = []binding{{name: token{kind: tokIdent, val: "block"}}}
	case name == "extends" || name == "ssi":
	default:
		t.known = false
	}
	return t
}

// assignments splits NAME=EXPR NAME=EXPR ... (with, include, macro).
func assignments(args []token) []binding {
	var out []binding
	for i := 0; i+1 < len(args); i++ {
		if args[i].kind != tokIdent || !args[i+1].is("=") {
			continue
		}
		end := i + 2
		for end < len(args) && !(end+1 < len(args) && args[end].kind == tokIdent && args[end+1].is("=")) {
			end++
		}
		out = append(out, binding{name: args[i], from: args[i+2 : end]})
		i = end - 1
	}
	return out
}

func trimFlag(toks []token, flag string) []token {
	if n := len(toks); n > 1 && toks[n-1].kind == tokIdent && toks[n-1].val == flag {
		return toks[:n-1]
	}
	return toks
}

func indexOf(toks []token, f func(token) bool) int {
	for i, t := range toks {
		if f(t) {
			return i
		}
	}
	return -1
}

// frame is a scope pongo2 opens with a child execution context: for,
// with, macro. cond counts the if-like blocks open in it, inside which a
// {% set %} may not run.
type frame struct {
	opener string
	vars   map[string]*schema
	cond   int
}

type checker struct {
	frames []*frame
	// ifs: the if-like blocks open, each with the optional values its
	// current branch has tested set.
	ifs   []map[string]bool
	bound map[string]bool
	// extends: blocks run inside another template, with whatever it
	// defines around them: an unknown name is not an error.
	extends bool
	uses    map[string]bool
	all     bool
	errs    []checkError
}

func (c *checker) errorf(t token, format string, args ...any) {
	c.errs = append(c.errs, checkError{line: t.line, col: t.col, msg: fmt.Sprintf(format, args...)})
}

func (c *checker) top() *frame { return c.frames[len(c.frames)-1] }

func (c *checker) push(opener string) *frame {
	f := &frame{opener: opener, vars: map[string]*schema{}}
	c.frames = append(c.frames, f)
	return f
}

func (c *checker) pop(opener string) {
	if n := len(c.frames); n > 1 && c.frames[n-1].opener == opener {
		c.frames = c.frames[:n-1]
	}
}

func (c *checker) tag(t tagArgs) {
	if !t.known {
		c.all = true // a tag registered elsewhere: it may read anything
		return
	}
	for _, e := range t.exprs {
		c.expr(e)
	}
	top := c.top()
	switch t.name.val {
	case "for":
		typ := c.expr(t.loop)
		f := c.push("for")
		f.vars["forloop"] = forloopT
		key, val := anyT, anyT
		switch typ.kind {
		case kindList:
			key = typ.elem
		case kindMap:
			key, val = stringT, typ.elem
			if !t.sorted {
				c.errorf(t.loop[0], "{%% for %%} over %s without sorted: the order changes from run to run, and so would the file; hint: add sorted at the end of the tag", typ.what)
			}
		}
		for i, b := range t.binds {
			f.vars[b.name.val] = key
			if i == 1 {
				f.vars[b.name.val] = val
			}
		}
	case "endfor":
		c.pop("for")
	case "with":
		types := make([]*schema, len(t.binds))
		for i, b := range t.binds {
			types[i] = c.expr(b.from)
		}
		f := c.push("with")
		for i, b := range t.binds {
			f.vars[b.name.val] = types[i]
		}
	case "endwith":
		c.pop("with")
	case "macro":
		if len(t.binds) == 0 {
			return
		}
		top.vars[t.binds[0].name.val] = anyT
		f := c.push("macro")
		for _, b := range t.binds[1:] {
			f.vars[b.name.val] = anyT
		}
	case "endmacro":
		c.pop("macro")
	case "set":
		if len(t.binds) == 0 {
			return
		}
		typ := c.expr(t.binds[0].from)
		if top.cond > 0 {
			typ = anyT // set in a branch that may not run: the old value may stay
		}
		top.vars[t.binds[0].name.val] = typ
	case "if", "ifchanged", "ifequal", "ifnotequal":
		top.cond++
		var tested map[string]bool
		if t.name.val == "if" {
			tested = c.tested(t.exprs[0])
		}
		c.ifs = append(c.ifs, tested)
	case "elif":
		if n := len(c.ifs); n > 0 {
			c.ifs[n-1] = c.tested(t.exprs[0])
		}
	case "else":
		if n := len(c.ifs); n > 0 {
			c.ifs[n-1] = nil
		}
	case "endif", "endifchanged", "endifequal", "endifnotequal":
		top.cond--
		if n := len(c.ifs); n > 0 {
			c.ifs = c.ifs[:n-1]
		}
	case "extends":
		c.extends, c.all = true, true
	case "include", "import", "ssi":
		c.all = true // the other template reads the context too
	default:
		for _, b := range t.binds {
			top.vars[b.name.val] = anyT
		}
	}
}

// tested returns the optional values an {% if %} condition proves set:
// those it is, alone or and-ed with other terms.
func (c *checker) tested(cond []token) map[string]bool {
	var out map[string]bool
	start := 0
	for i := 0; i <= len(cond); i++ {
		if i < len(cond) {
			switch t := cond[i]; {
			case t.kind == tokKeyword && t.val == "or", t.is("||"):
				return nil // either side may be the one that is true
			case !(t.kind == tokKeyword && t.val == "and" || t.is("&&")):
				continue
			}
		}
		term := cond[start:i]
		start = i + 1
		if len(term) == 3 && term[0].kind == tokIdent && term[1].is(".") && term[2].kind == tokIdent && !c.shadowed(term[0].val) {
			if out == nil {
				out = map[string]bool{}
			}
			out[term[0].val+"."+term[2].val] = true
		}
	}
	return out
}

// shadowed reports whether a tag binds name, hiding the context's.
func (c *checker) shadowed(name string) bool {
	for _, f := range c.frames {
		if _, ok := f.vars[name]; ok {
			return true
		}
	}
	return false
}

// optional reports each optional value toks (a {{ }}) prints outside an
// {% if %} that tests it, without |required or |default.
func (c *checker) optional(toks []token) {
	for i := 0; i+2 < len(toks); i++ {
		if toks[i].kind != tokIdent || !toks[i+1].is(".") || toks[i+2].kind != tokIdent || (i > 0 && toks[i-1].is(".")) {
			continue
		}
		path := toks[i].val + "." + toks[i+2].val
		o, ok := optional[path]
		if !ok || c.shadowed(toks[i].val) {
			continue
		}
		if j := i + 3; j+1 < len(toks) && toks[j].is("|") {
			switch toks[j+1].val {
			case "required", "default", "default_if_none":
				continue
			}
		}
		if c.guarded(o.guards) {
			continue
		}
		c.errorf(toks[i], "%s is empty when serf-hb runs without %s, and printed here it would leave a hole in the file; hint: print it inside {%% if %s %%}, or as {{ %s|required }} to fail the render when it is empty",
			path, o.setting, o.guards[0], path)
	}
}

// guarded reports whether an open {% if %} branch tests one of names.
func (c *checker) guarded(names []string) bool {
	for _, tested := range c.ifs {
		for _, n := range names {
			if tested[n] {
				return true
			}
		}
	}
	return false
}

// expr checks every variable reference in toks, and returns the type of
// toks when it is one variable, with or without filters.
func (c *checker) expr(toks []token) *schema {
	typ, single := anyT, true
	for i := 0; i < len(toks); {
		t := toks[i]
		switch {
		case t.kind == tokIdent:
			end, ty := c.chain(toks, i)
			if i == 0 {
				typ = ty
			} else {
				single = false
			}
			i = end
		case t.is("|") && i+1 < len(toks):
			// A filter: its name is not a variable; its argument, after
			// ':', is one variable or literal.
			name := toks[i+1]
			i += 2
			var arg []token
			if i+1 < len(toks) && toks[i].is(":") {
				start := i + 1
				i = start + 1
				if toks[start].kind == tokIdent {
					i, _ = c.chain(toks, start)
				}
				arg = toks[start:i]
			}
			typ = c.filter(name, typ, arg)
		default:
			single = false
			i++
		}
	}
	if !single {
		return anyT
	}
	return typ
}

// chain checks the variable starting at toks[i] (NAME, then .NAME, .0,
// [EXPR] or (ARGS) parts) and returns where it ends and its type.
func (c *checker) chain(toks []token, i int) (int, *schema) {
	root := toks[i]
	path := root.val
	typ := c.lookup(root)
	for i++; i < len(toks); {
		switch t := toks[i]; {
		case t.is(".") && i+1 < len(toks):
			part := toks[i+1]
			if part.kind == tokIdent {
				typ = c.attr(typ, path, part)
			} else {
				typ = index(typ)
			}
			path += "." + part.val
			i += 2
		case t.is("[") || t.is("("):
			end := closing(toks, i)
			inner := toks[i+1 : end]
			// A call's arguments or a subscript: both are expressions
			// (commas between arguments are just symbols to expr).
			c.expr(inner)
			switch {
			case t.val == "(":
				typ = anyT
			case len(inner) == 1 && inner[0].kind == tokString:
				typ = c.attr(typ, path, inner[0])
				path += `["` + inner[0].val + `"]`
			case len(inner) == 1 && inner[0].kind == tokNumber:
				typ = index(typ)
			case typ.kind == kindList || typ.kind == kindMap:
				typ = typ.elem
			default:
				typ = anyT
			}
			i = end + 1
		default:
			return i, typ
		}
	}
	return i, typ
}

// closing returns the index of the bracket closing toks[i], or len(toks).
func closing(toks []token, i int) int {
	depth := 0
	for j := i; j < len(toks); j++ {
		if toks[j].is("[") || toks[j].is("(") {
			depth++
		} else if toks[j].is("]") || toks[j].is(")") {
			if depth--; depth == 0 {
				return j
			}
		}
	}
	return len(toks)
}

// index is the type of x.0: pongo2 indexes a string too, but to a byte.
func index(typ *schema) *schema {
	if typ.kind == kindList {
		return typ.elem
	}
	return anyT
}

func (c *checker) lookup(root token) *schema {
	for i := len(c.frames) - 1; i >= 0; i-- {
		if typ, ok := c.frames[i].vars[root.val]; ok {
			return typ
		}
	}
	if typ := contextT.attr(root.val); typ != nil {
		c.uses[root.val] = true
		return typ
	}
	if root.val == "pongo2" || c.bound[root.val] || c.extends {
		return anyT
	}
	var have []string
	for i := len(c.frames) - 1; i >= 0; i-- {
		for name := range c.frames[i].vars {
			have = append(have, name)
		}
	}
	sort.Strings(have)
	have = append(have, contextT.names())
	hint := ""
	switch root.val {
	case "None", "nil", "null", "True", "False":
		hint = "; hint: pongo2 has true and false, and no None: test a value with {% if x %}"
	}
	c.errorf(root, "unknown variable %q (have: %s)%s", root.val, strings.Join(have, ", "), hint)
	return anyT
}

func (c *checker) attr(typ *schema, path string, part token) *schema {
	switch typ.kind {
	case kindObject:
		if a := typ.attr(part.val); a != nil {
			return a
		}
		hint := ""
		if typ.tagHint {
			hint = fmt.Sprintf("; hint: a tag is %s.tags.%s", path, part.val)
		}
		c.errorf(part, "%s has no attribute %q (have: %s)%s", typ.what, part.val, typ.names(), hint)
	case kindMap:
		return typ.elem
	case kindList:
		c.errorf(part, "%s is %s: it has no attribute %q; hint: {%% for x in %s %%} or %s.0", path, typ.what, part.val, path, path)
	case kindString:
		c.errorf(part, "%s is a string: it has no attribute %q", path, part.val)
	}
	return anyT
}

// filter returns the type of a filter's result, where the check can know.
func (c *checker) filter(name token, in *schema, arg []token) *schema {
	switch name.val {
	case "first", "last", "random":
		return index(in)
	case "slice", "required":
		return in
	case "group_by":
		if in != anyT && in != nodesT {
			c.errorf(name, "group_by groups a list of nodes, not %s", orWhat(in))
		}
		if len(arg) == 0 {
			c.errorf(name, `group_by needs a tag name: nodes|group_by:"zone"`)
		}
		return listOf(groupT)
	}
	return anyT
}

func orWhat(s *schema) string {
	if s.kind == kindObject {
		return "a " + s.what
	}
	return s.what
}

// checkErr turns the findings into one error for the template name.
func checkErr(name string, errs []checkError) error {
	if len(errs) == 0 {
		return nil
	}
	var out []error
	for i, e := range errs {
		if i == maxCheckErrors {
			out = append(out, fmt.Errorf("parse template %s: %d more like these", name, len(errs)-i))
			break
		}
		out = append(out, fmt.Errorf("parse template %s line %d col %d: %s", name, e.line, e.col, e.msg))
	}
	return errors.Join(out...)
}
