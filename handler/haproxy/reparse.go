package haproxy

// Reading a file from one parsed before: a membership change rewrites a
// few server lines of a file of thousands, and parsing the new file from
// scratch (8 ms at 10,000 servers) is most of what comparing it costs.

import "strings"

// reparse returns what parse(next) returns, built from prev's parse
// without reading again the lines the two files share, when they differ
// only in the server lines of one backend or listen section (and in blank
// or comment lines) and that section has no default-server; ok is false
// otherwise, and the caller parses next whole. The lines after the change
// keep their parse, their numbers moved by the lines it added or removed.
func reparse(prevSrc string, prev *Config, next string) (c *Config, ok bool) {
	// The changed lines: from the first line that differs to the last,
	// whole lines in both files.
	pre := commonPrefix(prevSrc, next)
	pre = strings.LastIndexByte(prevSrc[:pre], '\n') + 1
	suf := commonSuffix(prevSrc[pre:], next[pre:])
	for suf > 0 && !(lineStart(prevSrc, len(prevSrc)-suf) && lineStart(next, len(next)-suf)) {
		// Into the shared tail to its next line start, the same in both.
		i := strings.IndexByte(prevSrc[len(prevSrc)-suf:], '\n')
		if i < 0 {
			suf = 0
			break
		}
		suf -= i + 1
	}
	first := strings.Count(prevSrc[:pre], "\n") + 1 // the first changed line's number
	gone := lineCount(prevSrc[pre : len(prevSrc)-suf])
	added := next[pre : len(next)-suf]
	end := first + gone // the first line after the change, in prev
	shift := lineCount(added) - gone

	// The section the change is in: the last to begin before it. No other
	// line of prev than a server line may be among those changed.
	si := -1
	for i := range prev.Sections {
		s := &prev.Sections[i]
		if s.Line < first {
			si = i
		}
		for _, o := range s.others {
			if o.Num >= first && o.Num < end {
				return nil, false
			}
		}
	}
	if si < 0 || !isProxy(prev.Sections[si].Kind) || prev.Sections[si].DefaultServer != 0 {
		return nil, false
	}
	// The new lines: server lines of that section, blank lines, comments.
	var servers []Server
	for num, text := range lines(added) {
		words := splitWords(text)
		switch {
		case len(words) == 0:
		case words[0] == "server" && len(words) >= 3:
			servers = append(servers, parseServer(first-1+num, words, 1))
		default:
			return nil, false
		}
	}

	moved := func(n int) int {
		if n >= end {
			return n + shift
		}
		return n
	}
	total := len(servers)
	for i := si; i < len(prev.Sections); i++ {
		total += len(prev.Sections[i].Servers)
	}
	all := make([]Server, 0, total)
	c = &Config{Sections: make([]Section, len(prev.Sections))}
	for i := range prev.Sections {
		s := prev.Sections[i]
		if i < si {
			c.Sections[i] = s // wholly before the change
			continue
		}
		s.Line, s.DefaultServer = moved(s.Line), moved(s.DefaultServer)
		start := len(all)
		for _, srv := range s.Servers {
			if srv.Line >= first && srv.Line < end {
				continue // rewritten
			}
			if i == si && srv.Line >= end && servers != nil {
				all, servers = append(all, servers...), nil
			}
			srv.Line = moved(srv.Line)
			all = append(all, srv)
		}
		if i == si {
			all = append(all, servers...)
		}
		s.Servers = nil
		if len(all) > start {
			s.Servers = all[start:len(all):len(all)]
		}
		if s.others != nil && moved(s.others[len(s.others)-1].Num) != s.others[len(s.others)-1].Num {
			others := make([]line, len(s.others))
			for j, o := range s.others {
				others[j] = line{moved(o.Num), o.Text}
			}
			s.others = others
		}
		c.Sections[i] = s
	}
	return c, true
}

// commonPrefix is the length of the longest prefix a and b share: whole
// chunks compared at once (a memcmp), then the bytes of the first chunk
// that differs.
func commonPrefix(a, b string) int {
	const chunk = 4096
	n := 0
	for n+chunk <= len(a) && n+chunk <= len(b) && a[n:n+chunk] == b[n:n+chunk] {
		n += chunk
	}
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// commonSuffix is the length of the longest suffix a and b share.
func commonSuffix(a, b string) int {
	const chunk = 4096
	n := 0
	for n+chunk <= len(a) && n+chunk <= len(b) && a[len(a)-n-chunk:len(a)-n] == b[len(b)-n-chunk:len(b)-n] {
		n += chunk
	}
	for n < len(a) && n < len(b) && a[len(a)-1-n] == b[len(b)-1-n] {
		n++
	}
	return n
}

// lineStart reports whether offset i of text begins a line.
func lineStart(text string, i int) bool { return i == 0 || text[i-1] == '\n' }

// lineCount is the number of lines lines(text) yields.
func lineCount(text string) int {
	n := strings.Count(text, "\n")
	if text != "" && text[len(text)-1] != '\n' {
		n++
	}
	return n
}
