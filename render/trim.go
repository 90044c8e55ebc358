package render

// Trimming block tags. A block tag ({% if %}, {% for %}) alone on its line
// should leave nothing of that line behind: not its indentation, not its
// newline, so that a template reads like the file it produces. pongo2's
// LStripBlocks strips the whitespace before every block tag, also one in
// the middle of a line ("check {% if n.weight %}weight ..." renders
// "checkweight"), and its TrimBlocks drops the newline after every block
// tag, also one that ends a line of text. Neither can be told which tags
// are alone, and pongo2 does not let a newline into a tag, so the template
// text is rewritten before pongo2 reads it, keeping every token on its line
// and column (pongo2's errors name them):
//
//   - a line that is only blanks, one block tag and blanks has its blanks
//     moved inside the tag ("    {% if x %}" becomes "{%     if x %}"), and
//     TrimBlocks drops its newline;
//   - any other block tag that ends a line is followed by {{""}}, which
//     renders nothing and keeps TrimBlocks from dropping that newline.
//
// Tags with pongo2's own whitespace control ({%- -%}) are left as written.

import "strings"

// emptyOutput renders nothing; it stands between a tag and the newline
// TrimBlocks would otherwise drop.
const emptyOutput = `{{""}}`

// trimLines rewrites src, whose segments are segs (lex), as above.
func trimLines(src string, segs []segment) string {
	if len(segs) == 0 {
		return src
	}
	// Byte offset of each line's start; lines are 1-based.
	starts := []int{0, 0}
	for i := 0; i < len(src); i++ {
		if src[i] == '\n' {
			starts = append(starts, i+1)
		}
	}
	offset := func(t token) int { return starts[t.line] + t.col - 1 }
	perLine := map[int]int{}
	for _, s := range segs {
		if len(s.all) > 0 {
			perLine[s.all[0].line]++
		}
	}
	var b strings.Builder
	b.Grow(len(src) + 64)
	done := 0 // src[:done] is written
	for _, s := range segs {
		if !s.tag || s.open || len(s.all) < 2 {
			continue
		}
		open, end := s.all[0], s.all[len(s.all)-1]
		if open.line != end.line || open.val != "{%" || end.val != "%}" {
			continue
		}
		from, to := offset(open), offset(end)+2
		if from < done || to > len(src) || src[from:from+2] != "{%" || src[to-2:to] != "%}" {
			continue // not where the lexer says: leave it to pongo2
		}
		lineStart := starts[open.line]
		lineEnd := strings.IndexByte(src[to:], '\n')
		if lineEnd < 0 {
			lineEnd = len(src)
		} else {
			lineEnd += to
		}
		lead, trail := src[lineStart:from], src[to:lineEnd]
		if perLine[open.line] == 1 && blank(lead) && blank(trail) {
			b.WriteString(src[done:lineStart])
			b.WriteString("{%")
			b.WriteString(lead)
			b.WriteString(src[from+2 : to-2])
			b.WriteString(trail)
			b.WriteString("%}")
			done = lineEnd
			continue
		}
		if to < len(src) && src[to] == '\n' {
			b.WriteString(src[done:to])
			b.WriteString(emptyOutput)
			done = to
		}
	}
	if done == 0 {
		return src
	}
	b.WriteString(src[done:])
	return b.String()
}

// blank reports whether s is only spaces and tabs.
func blank(s string) bool { return strings.Trim(s, " \t") == "" }
