package render

import (
	"strings"
	"testing"
)

// TestBlockTagTrimming: a block tag alone on its line leaves nothing of the
// line; a block tag inside a line keeps the whitespace around it and the
// line's newline (issue 20: "check {% if n.weight %}weight ..." rendered
// "checkweight").
func TestBlockTagTrimming(t *testing.T) {
	for _, tc := range []struct{ name, src, want string }{
		{"inline keeps spaces", "a {% if true %}b{% endif %} c\n", "a b c\n"},
		{"weight between words", "check {% if 1 %}weight 7{% endif %} inter 1s\n", "check weight 7 inter 1s\n"},
		{"tag ending a line keeps its newline", "x {% if 1 %}y{% endif %}\nz\n", "x y\nz\n"},
		{"alone on its line, indented", "a\n    {% if 1 %}\n    b\n    {% endif %}\nc\n", "a\n    b\nc\n"},
		{"alone with trailing blanks", "a\n{% if 1 %}  \t\nb\n{% endif %}\nc\n", "a\nb\nc\n"},
		{"two tags on a line are not alone", "{% if 1 %}{% if 1 %}\nb\n{% endif %}{% endif %}\n", "\nb\n\n"},
		{"loop", "{% for x in roles %}\n  - {{ x }}\n{% endfor %}\nend\n", "  - a\n  - b\nend\n"},
		{"last line without newline", "a\n  {% if 1 %}b{% endif %}", "a\n  b"},
		{"whitespace control left to pongo2", "a  {%- if 1 %} b{% endif %}\n", "a b\n"},
		{"variable alone stays", "  {{ role }}\n", "  a\n"},
		{"verbatim untouched", "{% verbatim %}  {% if %}\n{% endverbatim %}x\n", "  {% if %}\nx\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tpl, err := ParseBytes("t", []byte(tc.src))
			if err != nil {
				t.Fatal(err)
			}
			out, err := tpl.Execute(Data{Roles: []string{"a", "b"}})
			if err != nil || string(out) != tc.want {
				t.Fatalf("Execute(%q) = %q, %v; want %q", tc.src, out, err, tc.want)
			}
		})
	}
}

// TestTrimmingKeepsErrorPositions: pongo2's errors after the rewrite still
// name the line and column of the template as written.
func TestTrimmingKeepsErrorPositions(t *testing.T) {
	src := "a\n    {% if 1 %}\n  {{ role|date:\"2006\" }}\n    {% endif %}\n"
	tpl, err := ParseBytes("t", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	_, err = tpl.Execute(Data{Roles: []string{"a"}})
	if err == nil || !strings.Contains(err.Error(), "Line 3 Col 11") {
		t.Fatalf("Execute = %v; want an error at line 3 column 11 (the filter)", err)
	}
	_, err = ParseBytes("t", []byte("a\n    {% if 1 %}\n    {% bogus %}\n    {% endif %}\n"))
	if err == nil || !strings.Contains(err.Error(), "Line 3 Col 8") {
		t.Fatalf("ParseBytes = %v; want an error at line 3 column 8", err)
	}
}

// TestTagsPrint: {{ self.tags }} and {{ n.tags }} print as sorted k=v
// pairs, not as pongo2's "<map[string]string Value>"; single tags still
// resolve (issue 20).
func TestTagsPrint(t *testing.T) {
	tpl, err := ParseBytes("t", []byte("{{ self.tags }}|{% for n in nodes %}{{ n.tags }} {{ n.tags.dc }}{% endfor %}|{{ self.tags.zone }}\n"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := tpl.Execute(Data{Roles: []string{"a"},
		Self:  Self{Tags: map[string]string{"zone": "z1", "role": "lb"}},
		Nodes: []Node{{Name: "w", Addr: "127.0.0.1", Tags: map[string]string{"dc": "eu", "port": "80"}}}})
	if want := "role=lb,zone=z1|dc=eu,port=80 eu|z1\n"; err != nil || string(out) != want {
		t.Fatalf("Execute = %q, %v; want %q", out, err, want)
	}
}

// TestDefaultTemplateNoEmptySocket: without --haproxy-socket the embedded
// template declares no stats socket and no state file, never an empty
// path ("stats socket  mode 600", issue 20).
func TestDefaultTemplateNoEmptySocket(t *testing.T) {
	tpl, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	out, err := tpl.Execute(Data{Roles: []string{"backend"}, Nodes: []Node{{Name: "w1", Addr: "127.0.0.1"}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"stats socket", "server-state-file", "load-server-state-from-file"} {
		if strings.Contains(string(out), bad) {
			t.Errorf("output without a socket has %q:\n%s", bad, out)
		}
	}
}
