package render

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flosch/pongo2/v6"
)

// TestLexPositions: the lexer puts tokens where pongo2 does, so that the
// check's line and column point at what pongo2 would point at.
func TestLexPositions(t *testing.T) {
	for _, prefix := range []string{
		"",
		"ab\n  é ",
		"{% verbatim %}{{ a }}{% endverbatim %}\n{# c #} {{ 'x\\\"' }}\t",
		"{% if 1 %}\n\n   {% if 2 %}{% endif %}{% endif %}{{- \"}}\" -}}",
		"{% verbatim %}\n{% endverbatim %}\r\n{%- if 1 -%}{%- endif -%}",
	} {
		line, col, ok := pongo2Position(prefix)
		if !ok {
			t.Fatalf("pongo2 reported no position for %q", prefix)
		}
		if !lexedAt(prefix+probe, line, col) {
			t.Errorf("after %q pongo2 says line %d col %d; lex put no %q token there", prefix, line, col, "nodes")
		}
	}
}

// probe makes pongo2 fail at run time, naming the position of "nodes".
const probe = "{{ nodes.x }}"

// pongo2Position executes prefix+probe with pongo2 alone and returns where
// it says the failing variable is.
func pongo2Position(prefix string) (line, col int, ok bool) {
	defer func() {
		if recover() != nil { // {{ 0%0 }}: see execute
			line, col, ok = 0, 0, false
		}
	}()
	tpl, err := parsePongo2(prefix + probe)
	if err != nil {
		return 0, 0, false
	}
	_, err = tpl.Execute(pongo2.Context{"nodes": []int{}})
	var perr *pongo2.Error
	if !errors.As(err, &perr) || !strings.Contains(perr.Error(), "can't access a field by name on type slice (variable nodes.x)") {
		return 0, 0, false
	}
	return perr.Line, perr.Column, true
}

// parsePongo2 parses src with pongo2 alone, unless pongo2 would hang on it.
func parsePongo2(src string) (*pongo2.Template, error) {
	if errs := hangs(lex(src)); len(errs) > 0 {
		return nil, errors.New(errs[0].msg)
	}
	return pongo2.NewSet("t", pongo2.MustNewLocalFileSystemLoader("")).FromString(src)
}

func lexedAt(src string, line, col int) bool {
	for _, s := range lex(src) {
		for _, tk := range s.toks {
			if tk.kind == tokIdent && tk.val == "nodes" && tk.line == line && tk.col == col {
				return true
			}
		}
	}
	return false
}

// TestEndcommentThatWouldHang: pongo2's parser loops forever on these; they
// are parse errors instead, in the template and in one it includes.
func TestEndcommentThatWouldHang(t *testing.T) {
	for name, src := range map[string]string{
		"not closed":     "{% comment %}\nx\n{% endcomment",
		"argument":       "{% comment %}x{% endcomment x %}",
		"wrong closer":   "{% comment %}x{% endcomment }}",
		"unlexable rest": "{% comment %}x{% endcomment @ %}y",
		"in a variable":  "{% comment %}{{ x {% endcomment }}",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseBytes("t", []byte(src))
			if err == nil || !strings.Contains(err.Error(), "pongo2 would hang on this one") {
				t.Fatalf("ParseBytes(%q) = %v; want the hang refused", src, err)
			}
		})
	}
	if _, err := ParseBytes("t", []byte("{% comment %}{{ x {% endcomment -%}")); err != nil {
		t.Fatalf("a comment pongo2 ends fine: %v", err)
	}

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "part"), []byte("x\n{% comment %}{% endcomment x %}"), 0o644); err != nil {
		t.Fatal(err)
	}
	main := filepath.Join(dir, "main")
	if err := os.WriteFile(main, []byte("a\n{% include \"part\" %}"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := ParseFile(main)
	want := "parse template " + filepath.Join(dir, "part") + " line 2 col 14: {% endcomment %} must be just that"
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("ParseFile = %v\nwant %s...", err, want)
	}
}
