package haproxy

// The parser of a rendered haproxy.cfg. It reads only what a live change
// depends on: the section layout, each backend's balance algorithm,
// hash-type and default-server, and its server lines. Every other line is
// kept as its words, so that Diff can tell whether anything else changed.

import (
	"cmp"
	"iter"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Config is what Parse keeps of a haproxy.cfg: its sections in file order.
type Config struct {
	Sections []Section
}

// Section is one section of the file. Lines before the first section
// keyword form a section with an empty Kind.
type Section struct {
	Kind string // global, defaults, frontend, backend, listen, peers, ...
	Name string // the word after the keyword, "" when there is none
	Line int    // line number of the section keyword, 1-based

	// Balance and HashType are the section's effective load-balancing
	// algorithm (the words of its `balance` line, e.g. "hdr(host)") and
	// `hash-type` method (its first word), inherited from the defaults
	// section the proxy uses when it sets none. A proxy with neither
	// balances "roundrobin" with "map-based" hashing, as HAProxy does.
	Balance  string
	HashType string
	// DefaultServer is the line number of the `default-server` line the
	// section has or inherits from its defaults section, 0 if none.
	DefaultServer int

	// Servers are the section's `server` lines, in backend and listen
	// sections only (peers and ring sections have server lines too; theirs
	// are other lines).
	Servers []Server
	// others are the section's other lines, the keyword line first, each
	// as its words joined by one space: comments and spacing never count.
	others []line
}

// line is one line of the file as its words.
type line struct {
	Num  int
	Text string
}

// Server is one `server NAME ADDRESS [KEYWORDS]` line.
type Server struct {
	Name string
	// Address is the address as written; IP and Port are set only when it
	// is a literal IP with a numeric port (the only kind a live change can
	// use: a dynamic server resolves no names).
	Address string
	IP      netip.Addr
	Port    int
	Weight  int // from `weight N`, else from default-server, else 1
	Check   bool
	// Keywords are the line's other words, verbatim and in order.
	Keywords []string
	Line     int
}

// isProxy reports whether a section of kind holds servers a backend
// balances over. A switch, not a map: the parser asks for every line.
func isProxy(kind string) bool { return kind == "backend" || kind == "listen" }

// isSection reports whether word is one of HAProxy 2.6's section
// keywords. HAProxy recognizes them at the start of any line, whatever its
// indentation.
func isSection(word string) bool {
	switch word {
	case "global", "defaults", "frontend", "backend", "listen", "peers", "resolvers", "userlist", "mailers",
		"program", "http-errors", "ring", "cache", "fcgi-app", "log-forward":
		return true
	}
	return false
}

// inherited is what a defaults section passes on to the proxies using it.
type inherited struct {
	balance, hashType string
	defaultServer     int // line number
	// weight is the weight default-server gives servers, +1 so that 0
	// means none (weight 0 is a weight).
	weight int
}

// serverWeight is the weight of a server line that sets none.
func (i inherited) serverWeight() int {
	if i.weight == 0 {
		return 1
	}
	return i.weight - 1
}

// Parse reads a haproxy.cfg. It never fails: a line it does not
// understand is kept as another line of its section, which is all Diff
// needs to tell a reload is due. The result is shared: callers must not
// modify it. It is safe for concurrent use: a caller may parse a file
// ahead, in a goroutine of its own, and a Parse of the same file
// meanwhile waits for that one's result.
func Parse(cfg []byte) *Config {
	// One live run reads the same two files several times (Diff, Verify,
	// the retired servers' signatures), at ~5 ms of CPU each at 10,000
	// servers.
	return parsed.get(cfg, func(src string, done []*memoEntry[*Config]) *Config {
		// A file parsed already, when cfg differs from it in some server
		// lines only, is where cfg is read from (reparse).
		for _, b := range done {
			if c, ok := reparse(b.src, b.val, src); ok {
				return c
			}
		}
		return parse(src)
	})
}

// parsed is Parse's memo.
var parsed memo[*Config]

// parse is Parse without the memo.
func parse(cfg string) *Config { return parseWith(cfg, false) }

// parseNames reads cfg as parse does, but keeps only the name and line
// number of each server line: what Adds needs of the installed file, at a
// fraction of the cost at 10,000 servers (BenchmarkParse).
func parseNames(cfg string) *Config { return parseWith(cfg, true) }

// parseWith is parse, keeping only the names of server lines when names
// is set.
func parseWith(cfg string, names bool) *Config {
	c := &Config{Sections: []Section{{}}}
	defaults := map[string]inherited{} // by name, for `from NAME`
	var last inherited                 // the last defaults section so far
	var eff inherited                  // the current section's, so far
	// Every section's servers live in one array, sized once: at 10,000
	// servers, growing each section's slice copied megabytes.
	servers := make([]Server, 0, strings.Count(cfg, "\n")+1)
	first := 0 // the current section's first server in servers
	finish := func() {
		cur := &c.Sections[len(c.Sections)-1]
		if len(servers) > first {
			cur.Servers = servers[first:len(servers):len(servers)]
		}
		first = len(servers)
		if cur.Kind == "defaults" {
			last = eff
			if cur.Name != "" {
				defaults[cur.Name] = eff
			}
		}
		cur.Balance, cur.HashType, cur.DefaultServer = cmp.Or(eff.balance, "roundrobin"), cmp.Or(eff.hashType, "map-based"), eff.defaultServer
	}
	for num, text := range lines(cfg) {
		if names && isProxy(c.Sections[len(c.Sections)-1].Kind) {
			if name, ok := plainServerName(text); ok {
				servers = append(servers, Server{Name: name, Line: num})
				continue
			}
		}
		words := splitWords(text)
		if len(words) == 0 {
			continue
		}
		if isSection(words[0]) {
			finish()
			s := Section{Kind: words[0], Line: num}
			if len(words) > 1 && words[1] != "from" {
				s.Name = words[1]
			}
			// A defaults section starts afresh, a proxy from the last
			// defaults section, either from the one it names.
			eff = inherited{}
			if isProxy(s.Kind) || s.Kind == "frontend" {
				eff = last
			}
			if i := slices.Index(words, "from"); i > 0 && i+1 < len(words) {
				eff = defaults[words[i+1]]
			}
			c.Sections = append(c.Sections, s)
		}
		cur := &c.Sections[len(c.Sections)-1]
		switch words[0] {
		case "balance":
			if len(words) > 1 {
				eff.balance = strings.Join(words[1:], " ")
			}
		case "hash-type":
			if len(words) > 1 {
				eff.hashType = words[1]
			}
		case "default-server":
			eff.defaultServer = num
			for _, kw := range keywordSpans(words[1:]) {
				if w, ok := weightOf(kw); ok {
					eff.weight = w + 1
				}
			}
		case "server":
			if isProxy(cur.Kind) && len(words) >= 3 {
				if names {
					servers = append(servers, Server{Name: words[1], Line: num})
					continue
				}
				servers = append(servers, parseServer(num, words, eff.serverWeight()))
				continue
			}
		}
		cur.others = append(cur.others, line{num, strings.Join(words, " ")})
	}
	finish()
	if len(c.Sections[0].others) == 0 {
		c.Sections = c.Sections[1:]
	}
	return c
}

// plainServerName returns the name of a plain server line (`server NAME
// ADDRESS ...`, at least three words, none quoted, escaped or commented),
// without splitting the rest of it; ok is false for any other line, which
// the caller reads word by word.
func plainServerName(text string) (name string, ok bool) {
	if quoted(text) {
		return "", false
	}
	first, i := nextBlankWord(text, 0)
	name, i = nextBlankWord(text, i)
	if third, _ := nextBlankWord(text, i); first != "server" || third == "" {
		return "", false
	}
	return name, true
}

// Section returns the backend or listen section called name, nil if the
// file has none.
func (c *Config) Section(name string) *Section {
	for i := range c.Sections {
		if s := &c.Sections[i]; isProxy(s.Kind) && s.Name == name {
			return s
		}
	}
	return nil
}

// Server returns the server name of the proxy section backend, and
// whether there is one.
func (c *Config) Server(backend, name string) (Server, bool) {
	if sec := c.Section(backend); sec != nil {
		for _, s := range sec.Servers {
			if s.Name == name {
				return s, true
			}
		}
	}
	return Server{}, false
}

// parseServer reads the words of a server line with at least three
// words; weight is the one it has if it sets none.
// The line's own words slice holds the keywords kept (filtered in place:
// a server line costs one allocation, its words, at 10,000 lines a run).
func parseServer(num int, words []string, weight int) Server {
	s := Server{Name: words[1], Address: words[2], Weight: weight, Line: num}
	s.IP, s.Port = parseAddress(words[2])
	rest, kept := words[3:], 0
	for i := 0; i < len(rest); {
		n := spanLen(rest, i)
		kw := rest[i : i+n]
		i += n
		if len(kw) == 1 && kw[0] == "check" {
			s.Check = true
			continue
		}
		if w, ok := weightOf(kw); ok {
			s.Weight = w
			continue
		}
		kept += copy(rest[kept:], kw)
	}
	if kept > 0 {
		s.Keywords = rest[:kept:kept]
	}
	return s
}

// weightOf reads the span `weight N`.
func weightOf(kw []string) (int, bool) {
	if len(kw) != 2 || kw[0] != "weight" {
		return 0, false
	}
	w, err := strconv.Atoi(kw[1])
	return w, err == nil
}

// parseAddress reads IP:PORT, [IPv6]:PORT or IPv6:PORT (HAProxy takes the
// last colon as the port's). Anything else (a host name, a port range or
// offset, an `ipv4@` prefix, no port) gives the zero values.
func parseAddress(a string) (netip.Addr, int) {
	i := strings.LastIndexByte(a, ':')
	if i <= 0 {
		return netip.Addr{}, 0
	}
	host, port := a[:i], a[i+1:]
	if len(host) > 2 && host[0] == '[' && host[len(host)-1] == ']' {
		host = host[1 : len(host)-1]
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || ip.Zone() != "" {
		return netip.Addr{}, 0
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 || port[0] == '+' || port[0] == '0' {
		return netip.Addr{}, 0
	}
	return ip.Unmap(), p
}

// lines yields the file's lines with 1-based numbers. A line ends at LF;
// a CR ends it too, as in HAProxy's parser.
func lines(cfg string) func(yield func(int, string) bool) {
	return func(yield func(int, string) bool) {
		s := cfg
		for num := 1; s != ""; num++ {
			text := s
			if i := strings.IndexByte(s, '\n'); i >= 0 {
				text, s = s[:i], s[i+1:]
			} else {
				s = ""
			}
			if i := strings.IndexByte(text, '\r'); i >= 0 {
				text = text[:i]
			}
			if !yield(num, text) {
				return
			}
		}
	}
}

// quoted reports whether text has any of the bytes that make a line more
// than words separated by blanks: a comment, quotes and the escape
// (splitWords reads them). Four IndexByte scans, not one ContainsAny,
// which builds its byte set on every call: the parser asks for every line.
func quoted(text string) bool {
	return strings.IndexByte(text, '#') >= 0 || strings.IndexByte(text, '\'') >= 0 ||
		strings.IndexByte(text, '"') >= 0 || strings.IndexByte(text, '\\') >= 0
}

// splitWords splits a line into words the way HAProxy does: spaces and
// tabs separate words, an unquoted '#' starts a comment, quotes group and
// are removed, and a backslash escapes a space, '#', a quote or itself
// (outside single quotes). Variables are not expanded: "$X" stays "$X".
func splitWords(text string) []string {
	if !quoted(text) {
		// The common case, without the copying below.
		return splitBlanks(text)
	}
	var words []string
	var w strings.Builder
	inWord, squote, dquote := false, false, false
	for i := 0; i < len(text); i++ {
		ch := text[i]
		switch {
		case (ch == ' ' || ch == '\t') && !squote && !dquote:
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
			continue
		case ch == '#' && !squote && !dquote:
			i = len(text)
			continue
		case ch == '"' && !squote:
			dquote = !dquote
		case ch == '\'' && !dquote:
			squote = !squote
		case ch == '\\' && !squote && i+1 < len(text) && strings.IndexByte(" \\#'\"", text[i+1]) >= 0:
			i++
			w.WriteByte(text[i])
		default:
			w.WriteByte(ch)
		}
		inWord = true
	}
	if inWord {
		words = append(words, w.String())
	}
	return words
}

// splitBlanks is strings.FieldsFunc(text, space or tab), byte by byte:
// neither byte occurs inside a multi-byte UTF-8 sequence, and the generic
// FieldsFunc, called per rune, was the top of a live run's profile at
// 10,000 server lines (two files parsed a run). The words are gathered on
// the stack and copied once into a slice of their number.
func splitBlanks(text string) []string {
	var stack [16]string
	words := stack[:0]
	for i := 0; ; {
		var w string
		if w, i = nextBlankWord(text, i); w == "" {
			break
		}
		words = append(words, w)
	}
	return slices.Clone(words)
}

// words yields the words of text, numbered from 0, as splitWords splits
// it, without building their slice when text has no quoting.
func words(text string) iter.Seq2[int, string] {
	return func(yield func(int, string) bool) {
		if quoted(text) {
			for i, w := range splitWords(text) {
				if !yield(i, w) {
					return
				}
			}
			return
		}
		for i, n := 0, 0; ; n++ {
			var w string
			if w, i = nextBlankWord(text, i); w == "" || !yield(n, w) {
				return
			}
		}
	}
}

// nextBlankWord returns the word of text at or after i, words being
// separated by spaces and tabs, and where it ends; "" when none is left.
func nextBlankWord(text string, i int) (word string, end int) {
	for i < len(text) && (text[i] == ' ' || text[i] == '\t') {
		i++
	}
	start := i
	for i < len(text) && text[i] != ' ' && text[i] != '\t' {
		i++
	}
	return text[start:i], i
}
