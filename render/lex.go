package render

// The lexer of the strict check (check.go): pongo2's own is unexported, so
// this one reads a template the way pongo2's does, token for token and
// position for position (TestLexPositions and FuzzCheck compare them).

import "strings"

// token is one lexeme inside {{ }} or {% %}, with its 1-based line and
// byte column as pongo2 counts them.
type token struct {
	kind      tokenKind
	val       string // strings without their quotes; \" and \\ undone
	line, col int
}

type tokenKind uint8

const (
	tokIdent tokenKind = iota
	tokKeyword
	tokNumber
	tokString
	tokSymbol
)

func (t token) is(sym string) bool { return t.kind == tokSymbol && t.val == sym }

// segment is one {{ }} or {% %}.
type segment struct {
	tag  bool    // {% %}
	all  []token // with its delimiters
	toks []token // without
	// open: the segment has no closing delimiter, because the template
	// ends or a character follows that pongo2 cannot lex there. pongo2
	// goes on reading text after it, and fails in its parser.
	open bool
}

// pongo2's symbols, of which it takes the longest, and its keywords
// (lexer.go).
var (
	symbols = set("{{-", "-}}", "{%-", "-%}",
		"==", ">=", "<=", "&&", "||", "{{", "}}", "{%", "%}", "!=", "<>",
		"(", ")", "+", "-", "*", "<", ">", "/", "^", ",", ".", "!", "|", ":", "=", "%", "[", "]")
	keywords = set("in", "and", "or", "not", "true", "false", "as", "export")
)

func set(words ...string) map[string]bool {
	m := make(map[string]bool, len(words))
	for _, w := range words {
		m[w] = true
	}
	return m
}

const (
	verbatimOpen  = "{% verbatim %}"
	verbatimClose = "{% endverbatim %}"
)

// lex splits src into its segments the way pongo2's lexer does: text,
// {# #} comments and {% verbatim %} blocks are skipped. Where pongo2's
// lexer fails it stops early instead.
func lex(src string) []segment {
	l := lexer{src: src, line: 1, col: 1}
	var segs []segment
	verbatim := false
	for l.pos < len(src) {
		// The order of these tests is pongo2's: it decides where a
		// verbatim block ends and what its first byte is.
		if verbatim {
			if strings.HasPrefix(src[l.pos:], verbatimClose) {
				l.skip(len(verbatimClose))
				verbatim = false
			}
		} else if strings.HasPrefix(src[l.pos:], verbatimOpen) {
			l.skip(len(verbatimOpen))
			verbatim = true
		}
		if !verbatim {
			rest := src[l.pos:]
			if strings.HasPrefix(rest, "{#") {
				end := strings.Index(rest[2:], "#}")
				if end < 0 || strings.IndexByte(rest[2:2+end], '\n') >= 0 {
					return segs // pongo2: comment not closed on its line
				}
				l.skip(2 + end + 2)
				continue
			}
			if strings.HasPrefix(rest, "{{") || strings.HasPrefix(rest, "{%") {
				seg, ok := l.code()
				if !ok {
					return segs
				}
				segs = append(segs, seg)
				continue
			}
		}
		// Only a '{' can start anything; the byte here is passed over
		// even when it is one (pongo2's lexer does the same).
		if l.pos+1 >= len(src) {
			break
		}
		next := strings.IndexByte(src[l.pos+1:], '{')
		if next < 0 {
			break
		}
		l.skip(1 + next)
	}
	return segs
}

type lexer struct {
	src       string
	pos       int
	line, col int
	// buf holds the tokens of all segments, which are slices of it: one
	// growing allocation rather than one per segment.
	buf []token
}

// skip moves over n bytes, counting lines.
func (l *lexer) skip(n int) {
	for ; n > 0 && l.pos < len(l.src); n-- {
		if l.src[l.pos] == '\n' {
			l.line++
			l.col = 0
		}
		l.pos++
		l.col++
	}
}

func isIdentByte(c byte, digits bool) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' || digits && '0' <= c && c <= '9'
}

// code lexes one {{ }} or {% %} starting at l.pos; false where pongo2's
// lexer fails.
func (l *lexer) code() (segment, bool) {
	first := len(l.buf)
	for l.pos < len(l.src) {
		c := l.src[l.pos]
		start := token{line: l.line, col: l.col}
		switch {
		case c == ' ' || c == '\t' || c == '\r':
			l.skip(1)
			continue
		case c == '\n':
			return segment{}, false
		case isIdentByte(c, true):
			// A run of digits followed by a letter is an identifier to
			// pongo2 too ("1st").
			n := l.pos
			for n < len(l.src) && '0' <= l.src[n] && l.src[n] <= '9' {
				n++
			}
			start.kind = tokNumber
			if n == len(l.src) || !isIdentByte(l.src[n], true) {
				start.val = l.src[l.pos:n]
			} else {
				for n < len(l.src) && isIdentByte(l.src[n], true) {
					n++
				}
				start.val = l.src[l.pos:n]
				start.kind = tokIdent
				if keywords[start.val] {
					start.kind = tokKeyword
				}
			}
			l.skip(n - l.pos)
		case c == '"' || c == '\'':
			var b strings.Builder
			n := l.pos + 1
			for ; n < len(l.src) && l.src[n] != c; n++ {
				switch l.src[n] {
				case '\n':
					return segment{}, false
				case '\\':
					if n+1 == len(l.src) || l.src[n+1] != '"' && l.src[n+1] != '\\' {
						return segment{}, false
					}
					n++
				}
				b.WriteByte(l.src[n])
			}
			if n == len(l.src) {
				return segment{}, false
			}
			start.kind, start.val = tokString, b.String()
			l.skip(n + 1 - l.pos)
		default:
			sym := ""
			for n := 3; n > 0 && sym == ""; n-- {
				if l.pos+n <= len(l.src) && symbols[l.src[l.pos:l.pos+n]] {
					sym = l.src[l.pos : l.pos+n]
				}
			}
			if sym == "" {
				return l.unclosed(first), true
			}
			start.kind, start.val = tokSymbol, sym
			l.skip(len(sym))
		}
		l.buf = append(l.buf, start)
		if start.kind == tokSymbol && len(l.buf)-first > 1 && strings.HasSuffix(start.val, "}") {
			toks := l.buf[first:len(l.buf):len(l.buf)]
			return segment{tag: strings.HasPrefix(toks[0].val, "{%"), all: toks, toks: toks[1 : len(toks)-1]}, true
		}
	}
	return l.unclosed(first), true
}

func (l *lexer) unclosed(first int) segment {
	toks := l.buf[first:len(l.buf):len(l.buf)]
	return segment{tag: strings.HasPrefix(toks[0].val, "{%"), all: toks, toks: toks[1:], open: true}
}

// hangs finds what pongo2's parser would loop on forever: inside
// {% comment %}, a {% and endcomment that %} does not follow (arguments,
// a missing %}), because it waits for a %} without reading on.
func hangs(segs []segment) []checkError {
	var errs []checkError
	for si, s := range segs {
		for i, t := range s.all {
			if !t.is("{%") && !t.is("{%-") {
				continue
			}
			if name, ok := following(segs, si, i, 1); !ok || name.kind != tokIdent || name.val != "endcomment" {
				continue
			}
			if end, ok := following(segs, si, i, 2); !ok || !end.is("%}") && !end.is("-%}") {
				errs = append(errs, checkError{line: t.line, col: t.col,
					msg: "{% endcomment %} must be just that, and closed on its line: pongo2 would hang on this one"})
			}
		}
	}
	return errs
}

// following returns the token n places after segs[si].all[i], in the same
// segment or the next ones.
func following(segs []segment, si, i, n int) (token, bool) {
	for i += n; si < len(segs); si++ {
		if i < len(segs[si].all) {
			return segs[si].all[i], true
		}
		i -= len(segs[si].all)
	}
	return token{}, false
}
