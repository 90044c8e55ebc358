package render

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flosch/pongo2/v6"
)

// TestStrictNamesFileLineAndColumn is the example from the issue, through
// ParseFile as the handler calls it.
func TestStrictNamesFileLineAndColumn(t *testing.T) {
	p := filepath.Join(t.TempDir(), "haproxy.cfg.tmpl")
	src := "backend nodes\n{% for n in nodes %}\n    server {{ n.name }} {{ n.address }}:3000 check\n{% endfor %}\n"
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := ParseFile(p)
	want := "parse template " + p + ` line 3 col 30: node has no attribute "address" (have: name, addr, role, tags, port, weight); hint: a tag is n.tags.address`
	if err == nil || err.Error() != want {
		t.Fatalf("ParseFile = %v\nwant %s", err, want)
	}
}

func TestStrictErrors(t *testing.T) {
	for _, tc := range []struct{ name, src, want string }{
		{"node attribute", "{% for n in nodes %}{{ n.address }}{% endfor %}",
			`line 1 col 26: node has no attribute "address" (have: name, addr, role, tags, port, weight); hint: a tag is n.tags.address`},
		{"self attribute", "x\n{{ self.nmae }}",
			`line 2 col 9: self has no attribute "nmae" (have: name, role, tags); hint: a tag is self.tags.nmae`},
		{"unknown variable", "{% for n in nodse %}{% endfor %}",
			`line 1 col 13: unknown variable "nodse" (have: nodes, addresses, self, role, roles, by_role, haproxy)`},
		{"unknown variable inside a loop lists the loop's", "{% for n in nodes %}{{ m.name }}{% endfor %}",
			`unknown variable "m" (have: forloop, n, nodes,`},
		{"if on a missing attribute", "{% for n in nodes %}{% if n.foo %}x{% endif %}{% endfor %}",
			`col 29: node has no attribute "foo"`},
		{"elif", "{% if role %}{% elif self.tag %}{% endif %}", `self has no attribute "tag"`},
		{"subscript by name", `{% for n in nodes %}{{ n["adr"] }}{% endfor %}`, `node has no attribute "adr"`},
		{"index then attribute", "{{ nodes.0.nam }}", `node has no attribute "nam" (have: name, addr, role, tags, port, weight); hint: a tag is nodes.0.tags.nam`},
		{"filter argument", `{% for n in nodes %}{{ n.tags.w|default:n.wieght }}{% endfor %}`, `node has no attribute "wieght"`},
		{"attribute of a list", "{{ nodes.name }}", `nodes is a list of nodes: it has no attribute "name"; hint: {% for x in nodes %} or nodes.0`},
		{"attribute of a tag value", "{% for n in nodes %}{{ n.tags.zone.name }}{% endfor %}", `n.tags.zone is a string: it has no attribute "name"`},
		{"django forloop", "{% for n in nodes %}{{ forloop.counter }}{% endfor %}", `forloop has no attribute "counter" (have: Counter, Counter0,`},
		{"forloop outside a loop", "{{ forloop.Counter }}", `unknown variable "forloop"`},
		{"parent loop", "{% for r in roles %}{% for n in by_role[r] %}{{ forloop.Parentloop.Last }}{{ n.rol }}{% endfor %}{% endfor %}",
			`node has no attribute "rol"`},
		{"by_role", "{% for n in by_role.web %}{{ n.adr }}{% endfor %}", `node has no attribute "adr"`},
		{"by_role pairs", "{% for role, list in by_role sorted %}{% for n in list %}{{ n.adr }}{% endfor %}{% endfor %}", `node has no attribute "adr"`},
		{"map without sorted", "{% for n in nodes %}{% for k, v in n.tags %}{{ k }}{% endfor %}{% endfor %}",
			"line 1 col 36: {% for %} over tags without sorted: the order changes from run to run, and so would the file; hint: add sorted"},
		{"by_role without sorted", "{% for r, l in by_role reversed %}{% endfor %}", "over by_role without sorted"},
		{"group attribute", `{% for g in nodes|group_by:"zone" %}{{ g.name }}{% endfor %}`, `group has no attribute "name" (have: key, nodes)`},
		{"grouped node", `{% for g in nodes|group_by:"zone" %}{% for n in g.nodes %}{{ n.adr }}{% endfor %}{% endfor %}`, `node has no attribute "adr"`},
		{"group_by of roles", `{% for g in roles|group_by:"zone" %}{% endfor %}`, `group_by groups a list of nodes, not a list of strings`},
		{"group_by without a tag", `{% for g in nodes|group_by %}{% endfor %}`, `group_by needs a tag name`},
		{"set", "{% set web = by_role.web %}{% for n in web %}{{ n.adr }}{% endfor %}", `node has no attribute "adr"`},
		{"with", "{% with n=nodes.0 %}{{ n.adr }}{% endwith %}", `node has no attribute "adr"`},
		{"with as", "{% with nodes.0 as n %}{{ n.adr }}{% endwith %}", `node has no attribute "adr"`},
		{"first", "{% with n=nodes|first %}{{ n.adr }}{% endwith %}", `node has no attribute "adr"`},
		{"macro default", "{% macro m(x=self.nam) %}{% endmacro %}", `self has no attribute "nam"`},
		{"include with", `{% include role with a=self.nam only %}`, `self has no attribute "nam"`},
		{"cycle", "{% for n in nodes %}{% cycle n.a n.name as c %}{% endfor %}", `node has no attribute "a"`},
		{"firstof", "{% firstof self.nam role %}", `self has no attribute "nam"`},
		{"filter tag argument", `{% filter default:self.nam|lower %}x{% endfilter %}`, `self has no attribute "nam"`},
		{"django None", "{% if role == None %}{% endif %}", `unknown variable "None" (have: nodes, addresses, self, role, roles, by_role, haproxy); hint: pongo2 has true and false, and no None`},
		{"trim markers", "{%- for n in nodes -%}\n{{- n.adr -}}\n{%- endfor -%}", `line 2 col 7: node has no attribute "adr"`},
		{"optional value printed bare", "global\n    stats socket {{ haproxy.socket }} mode 600 level admin",
			`line 2 col 21: haproxy.socket is empty when serf-hb runs without --haproxy-socket, and printed here it would leave a hole in the file; hint: print it inside {% if haproxy.socket %}, or as {{ haproxy.socket|required }} to fail the render when it is empty`},
		{"state file printed bare", "server-state-file {{ haproxy.state_file }}", `line 1 col 22: haproxy.state_file is empty when serf-hb runs without --haproxy-socket`},
		{"optional value under another if", "{% if role %}{{ haproxy.socket }}{% endif %}", "haproxy.socket is empty"},
		{"optional value in the else branch", "{% if haproxy.socket %}{% else %}{{ haproxy.socket }}{% endif %}", "haproxy.socket is empty"},
		{"optional value in an elif branch", "{% if haproxy.socket %}{% elif role %}{{ haproxy.socket }}{% endif %}", "haproxy.socket is empty"},
		{"optional value under or", "{% if haproxy.socket or role %}{{ haproxy.socket }}{% endif %}", "haproxy.socket is empty"},
		{"optional value under not", "{% if not haproxy.socket %}{{ haproxy.socket }}{% endif %}", "haproxy.socket is empty"},
		{"optional value after its if", "{% if haproxy.socket %}{% endif %}{{ haproxy.socket }}", "haproxy.socket is empty"},
		{"optional value through another filter", "{{ haproxy.socket|upper }}", "haproxy.socket is empty"},
		{"state file does not prove the socket", "{% if haproxy.state_file %}{{ haproxy.socket }}{% endif %}", "haproxy.socket is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseBytes("t.tmpl", []byte(tc.src))
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "parse template t.tmpl line ") {
				t.Fatalf("ParseBytes(%q) = %v\nwant an error containing %s", tc.src, err, tc.want)
			}
		})
	}
}

// TestStrictAllows: what may legitimately be absent still renders, and
// pongo2's own variables and tags still work.
func TestStrictAllows(t *testing.T) {
	d := Data{
		Roles: []string{"web", "api"},
		Self:  Self{Name: "lb", Tags: map[string]string{"zone": "a"}},
		Nodes: []Node{
			{Name: "w1", Addr: "127.0.0.1", Role: "web", Tags: map[string]string{"weight": "5", "port": ""}},
			{Name: "w2", Addr: "127.0.0.2", Role: "web", Tags: map[string]string{"port": "0"}},
		},
	}
	for _, tc := range []struct{ name, src, want string }{
		{"missing tag with default", `{% for n in nodes %}{{ n.tags.weight|default:"1" }},{% endfor %}`, "5,1,"},
		{"missing tag in if", `{% for n in nodes %}{% if n.tags.weight %}w{% else %}-{% endif %}{% endfor %}`, "w-"},
		{"missing self tag", `[{{ self.tags.dc }}]`, "[]"},
		{"invalid port", `{% for n in nodes %}{{ n.port|default:"3000" }},{% endfor %}`, "3000,3000,"},
		{"tag by subscript", `{% for n in nodes %}{{ n.tags["weight"] }},{% endfor %}`, "5,,"},
		{"role missing from by_role", `{% for n in by_role.db %}x{% empty %}none{% endfor %}`, "none"},
		{"tags sorted", `{% for k, v in self.tags sorted %}{{ k }}={{ v }}{% endfor %}`, "zone=a"},
		{"pongo2 forloop", `{% for n in nodes %}{{ forloop.Counter }}{{ n.name }}{% if not forloop.Last %},{% endif %}{% endfor %}`, "1w1,2w2"},
		{"macro arguments", `{% macro srv(n, p="80") %}{{ n.name }}:{{ p }}{% endmacro %}{{ srv(nodes.0) }}`, "w1:80"},
		{"set later seen by a macro", `{% macro m() %}{{ x }}{% endmacro %}{% set x = "1" %}{{ m() }}`, "1"},
		{"cycle as", `{% for n in nodes %}{% cycle "a" "b" as ab %}{{ ab }}{% endfor %}`, "aabb"},
		{"with as", `{% with self.tags.zone as z %}{{ z }}{% endwith %}`, "a"},
		{"set in a branch", `{% set n = nodes.0 %}{% if role == "x" %}{% set n = self %}{% endif %}{{ n.addr }}`, "127.0.0.1"},
		{"pongo2 meta", `{{ pongo2.version }}`, pongo2.Version},
		{"verbatim and comments", "{% verbatim %}{{ n.address }}{% endverbatim %}{# {{ nodse }} #}{% comment %}{{ x.y }}{% endcomment %}",
			"{{ n.address }}"},
		{"literal strings", `{{ "n.address" }}{% if "}}" == "}}" %}!{% endif %}`, "n.address!"},
		// Optional values (empty here: no socket) printed where tested or
		// with a fallback.
		{"optional value tested", "{% if haproxy.socket %}stats socket {{ haproxy.socket }}{% endif %}.", "."},
		{"optional value and-ed", "{% if role and haproxy.socket %}{{ haproxy.socket }}{% endif %}.", "."},
		{"optional value tested in an elif", "{% if role == \"x\" %}{% elif haproxy.socket %}{{ haproxy.socket }}{% endif %}.", "."},
		{"state file under the socket's if", "{% if haproxy.socket %}{% for n in nodes %}{{ haproxy.state_file }}{% endfor %}{% endif %}.", "."},
		{"optional value with a default", `{{ haproxy.socket|default:"none" }}`, "none"},
		{"optional value in a condition", `{% if haproxy.socket == "" %}off{% endif %}`, "off"},
		{"a macro argument named haproxy", `{% macro m(haproxy) %}{{ haproxy.socket }}{% endmacro %}.`, "."},
		{"required with a value", `{{ self.name|required }}`, "lb"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tpl, err := ParseBytes("t", []byte(tc.src))
			if err != nil {
				t.Fatal(err)
			}
			out, err := tpl.Execute(d)
			if err != nil || string(out) != tc.want {
				t.Fatalf("Execute = %q, %v; want %q", out, err, tc.want)
			}
		})
	}
}

func TestStrictReportsAFewErrors(t *testing.T) {
	src := strings.Repeat("{{ self.x }}\n", maxCheckErrors+5)
	_, err := ParseBytes("t", []byte(src))
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) || len(joined.Unwrap()) != maxCheckErrors+1 {
		t.Fatalf("ParseBytes = %v; want %d errors and a count of the rest", err, maxCheckErrors)
	}
	if !strings.Contains(err.Error(), "line 10 col 9:") || !strings.HasSuffix(err.Error(), "5 more like these") {
		t.Fatalf("error %q lacks line 10 or the count of the rest", err)
	}
}

// TestUses: the context variables a template refers to are known, so that
// Execute builds the costly ones only for templates that use them.
func TestUses(t *testing.T) {
	for _, tc := range []struct {
		src  string
		uses string
		all  bool
	}{
		{"{% for n in nodes %}{{ n.name }}{% endfor %}", "nodes", false},
		{"{% for n in nodes %}{% endfor %}{{ role }}", "nodes role", false},
		{"{% for n in by_role.web %}{% endfor %}{{ roles.0 }}", "roles by_role", false},
		{"{% for addresses in nodes %}{{ addresses.name }}{% endfor %}", "nodes", false},
		{"{% comment %}{{ addresses }}{% endcomment %}", "", false},
		{`{% include "x" %}`, "", true},
	} {
		uses, all, errs := check(lex(tc.src))
		var got []string
		for _, name := range []string{"nodes", "addresses", "self", "role", "roles", "by_role"} {
			if uses[name] {
				got = append(got, name)
			}
		}
		if strings.Join(got, " ") != tc.uses || all != tc.all || errs != nil {
			t.Errorf("check(%q) = %v, %v, %v; want %s, %v", tc.src, got, all, errs, tc.uses, tc.all)
		}
	}
}

// FuzzCheck: the check never panics on a template pongo2 accepts, names
// lines that exist, and lexes tokens where pongo2 has them.
func FuzzCheck(f *testing.F) {
	f.Add(string(defaultTemplate))
	f.Add("{% for n in nodes %}{{ n.address }}{% endfor %}")
	f.Add("{% verbatim %}{% endverbatim %}{# x #}{% comment %}{% endcomment %}")
	f.Add(`{% with a=b c=d %}{% include "x" with e=f only %}{% endwith %}{% macro m(a, b=1) export %}{% endmacro %}`)
	f.Add("{% for k, v in by_role sorted %}{{ v.0|first }}{% cycle 'a' 'b' as c silent %}{% endfor %}")
	f.Fuzz(func(t *testing.T, src string) {
		if _, err := parsePongo2(src); err == nil {
			_, _, errs := check(lex(src))
			lines := strings.Count(src, "\n") + 1
			for _, e := range errs {
				if e.line < 1 || e.line > lines || e.col < 1 {
					t.Fatalf("check(%q) reports line %d col %d of %d lines", src, e.line, e.col, lines)
				}
			}
		}
		if line, col, ok := pongo2Position(src); ok && !lexedAt(src+probe, line, col) {
			t.Fatalf("after %q pongo2 says line %d col %d; lex put no nodes token there", src, line, col)
		}
	})
}

// TestRequired: |required passes a value that is there and fails the
// render, naming the line and what is missing, on an empty one.
func TestRequired(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		d         Data
		want      string // output, or the error's tail
		fails     bool
	}{
		{"socket set", `stats socket {{ haproxy.socket|required:"--haproxy-socket" }}`, Data{HAProxy: HAProxy{Socket: "/run/a.sock"}}, "stats socket /run/a.sock", false},
		{"socket empty", "global\n    stats socket {{ haproxy.socket|required:\"--haproxy-socket\" }}", Data{}, "--haproxy-socket is required here, and it is empty", true},
		{"missing tag", `{{ self.tags.zone|required }}`, Data{}, "a value is required here, and it is empty", true},
		{"empty list", `{{ nodes|required|length }}`, Data{}, "a value is required here, and it is empty", true},
		{"list", `{{ nodes|required|length }}`, Data{Nodes: []Node{{Name: "w1", Addr: "127.0.0.1"}}}, "1", false},
		{"zero is a value", `{{ 0|required }}`, Data{}, "0", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tpl, err := ParseBytes("t.tmpl", []byte(tc.src))
			if err != nil {
				t.Fatal(err)
			}
			out, err := tpl.Execute(tc.d)
			switch {
			case tc.fails && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Execute = %q, %v; want an error containing %q", out, err, tc.want)
			case !tc.fails && (err != nil || string(out) != tc.want):
				t.Fatalf("Execute = %q, %v; want %q", out, err, tc.want)
			}
			if tc.fails {
				t.Log(err)
			}
		})
	}
}
