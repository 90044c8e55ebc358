package haproxy

// The fast check: proving a new haproxy.cfg valid from the last valid one
// without running `haproxy -c` over the whole file (0.7-2.2 s at 10,000
// servers).
//
// The argument is an induction. The installed file was accepted by a full
// check (or by this one, and so on back to a full check). When the new
// file differs from it only in server lines of backend and listen
// sections, and each difference is one whose validity depends on nothing
// but the line itself and facts about its section that this file pins
// down, the new file is valid too. Everything here is chosen so that the
// fast check says "valid" only in that case, and "not provable" (the full
// check runs) in every other: it may refuse valid files, never pass an
// invalid one. fastcheck_test.go holds it to that against real HAProxy
// 2.6 and 3.0 on random files and changes.

import (
	"bytes"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/serf-hb/serf-hb/internal/name"
)

// FastCheck reports whether new is a configuration HAProxy accepts, given
// that old is one (`haproxy -c` accepted it, or an earlier FastCheck
// did): ok is true only when it can prove it, and why says what it found
// (the changes it proved, or the first thing it could not reason about).
// A false ok means "run the full check", not "invalid".
//
// It proves new valid when every line other than the server lines of
// backend and listen sections is byte for byte the same in both files
// (blank and comment-only lines aside), and every server line added or
// changed sits after its section's other lines and is written in a narrow
// grammar (see checkServerLine) in a section without default-server,
// server-template, explicit ids or track, and no removed or changed
// server is named anywhere else in the file (knownGround and
// affectedSection list the rest). It holds for HAProxy 2.6 and 3.0. The
// proof stands in for the full check only where HAProxy does not read the
// file (a change applied through the runtime API): a caller about to
// reload runs the full check, whatever this says.
func FastCheck(old, new []byte) (ok bool, why string) {
	if bytes.Equal(old, new) {
		return true, "identical"
	}
	o, why := scanOf(old)
	if why != "" {
		return false, "old file: " + why
	}
	n, why := scan(string(new))
	if why != "" {
		return false, why
	}
	if why := sameFrame(o, n); why != "" {
		return false, why
	}
	if why := knownGround(n); why != "" {
		return false, why
	}
	var refs map[string]bool // tokens naming servers elsewhere, built on demand
	var added, changed, removed int
	for i := range n.sections {
		ns, os := &n.sections[i], &o.sections[i]
		if !isProxy(ns.kind) {
			continue
		}
		sc, why := sectionChanges(os, ns)
		if why != "" {
			return false, why
		}
		if len(sc.add)+len(sc.change)+len(sc.remove) == 0 {
			continue
		}
		if why := affectedSection(n, ns, sc); why != "" {
			return false, why
		}
		for _, s := range append(sc.add, sc.change...) {
			if why := checkServerLine(s.raw); why != "" {
				return false, fmt.Sprintf("server %s/%s at line %d: %s", ns.name, s.name, s.line, why)
			}
		}
		for _, s := range append(sc.remove, sc.change...) {
			if refs == nil {
				var why string
				if refs, why = references(n); why != "" {
					return false, why
				}
			}
			if refs[s.name] {
				return false, fmt.Sprintf("server %s/%s is removed or changed and its name appears elsewhere in the file (track, use-server, an ACL...)", ns.name, s.name)
			}
		}
		added, changed, removed = added+len(sc.add), changed+len(sc.change), removed+len(sc.remove)
	}
	return true, fmt.Sprintf("%d server lines added, %d changed, %d removed, nothing else", added, changed, removed)
}

// maxFastServers bounds a backend the fast check reasons about. HAProxy
// sets no limit of its own that this file could reach (measured: 2.6 and
// 3.0 accept 10,000 and more); the bound keeps the claim within what the
// tests and benchmarks have run.
const maxFastServers = 20000

// maxFastWeight bounds the total weight of a backend given an added or
// changed server line. Consistent hashing (and random, which uses it)
// allocates 16 tree nodes per unit of weight when HAProxy checks the file,
// so 20,000 servers of weight 256 would ask for ~80 million nodes, several
// GB: a check that may fail for memory. 100,000 (1.6 million nodes, tens of
// MB) is 10,000 servers of weight 10.
const maxFastWeight = 100000

// scanned is a file as the fast check reads it: its sections, each with
// its server lines and its other lines, raw. Parse would do, but it reads
// every server line's keywords and address, and at 10,000 servers that
// is most of the time; the fast check needs only the first two words of
// each line, and the words of the few other lines.
type scanned struct {
	sections []scannedSection
}

type scannedSection struct {
	kind, name string
	line       int
	// others are the section's lines other than server lines, blank
	// lines and comment-only lines (HAProxy reads nothing from those), the
	// keyword line first, raw.
	others []rawLine
	// servers are the `server` lines of a backend or listen section.
	servers []rawServer
}

type rawLine struct {
	num  int
	text string
}

type rawServer struct {
	name string
	line int
	raw  string
	// after is how many of the section's other lines come before it: a
	// server line is read with the settings seen so far, so a line moved
	// among them is a changed line, even byte for byte the same.
	after int
}

// words returns the line's words as HAProxy splits them.
func (l rawLine) words() []string { return splitWords(l.text) }

// ScanAhead reads cfg the way FastCheck reads the file it checks
// another against, and keeps the result for it: a run that will check its
// new file against the installed one scans the installed one beside
// other work (~3 ms of CPU at 10,000 servers).
func ScanAhead(cfg []byte) { scanOf(cfg) }

// scanOf is scan, kept for the last two files (its memo, scans): the
// result is shared, and never modified.
func scanOf(cfg []byte) (*scanned, string) {
	r := scans.get(cfg, func(src string, _ []*memoEntry[scanResult]) scanResult {
		sc, why := scan(src)
		return scanResult{sc, why}
	})
	return r.sc, r.why
}

type scanResult struct {
	sc  *scanned
	why string
}

var scans memo[scanResult]

// scan reads a file's lines (numbered as Parse numbers them) into
// sections, or says why it will not: a control character other than a tab
// anywhere (HAProxy's and Parse's readings of a CR or a NUL may differ, and
// a file with one is not worth the argument).
func scan(cfg string) (*scanned, string) {
	sc := &scanned{sections: []scannedSection{{}}}
	// Every section's lines live in two arrays, sized once (as in parse):
	// grown line by line, 10,000 server lines cost a third of the scan in
	// copies. A section's slices are cut from them when it ends.
	lines := strings.Count(cfg, "\n") + 1
	servers, others := make([]rawServer, 0, lines), make([]rawLine, 0, lines)
	firstServer, firstOther := 0, 0
	cut := func() {
		cur := &sc.sections[len(sc.sections)-1]
		cur.servers = servers[firstServer:len(servers):len(servers)]
		cur.others = others[firstOther:len(others):len(others)]
		firstServer, firstOther = len(servers), len(others)
	}
	rest := cfg
	for num := 1; rest != ""; num++ {
		line := rest
		if i := strings.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			rest = ""
		}
		quoted := false
		for i := 0; i < len(line); i++ {
			switch c := line[i]; {
			case c < ' ' && c != '\t' || c == 0x7f:
				return nil, fmt.Sprintf("line %d: control character %q", num, c)
			case c == '"' || c == '\'' || c == '\\' || c == '#':
				quoted = true
			}
		}
		var first, second string
		if quoted {
			if ignorable(line) {
				continue
			}
			w := append(splitWords(line), "", "")
			first, second = w[0], w[1]
		} else {
			first, second = twoFields(line)
			if first == "" {
				continue
			}
		}
		if isSection(first) {
			cut()
			s := scannedSection{kind: first, line: num}
			if second != "from" {
				s.name = second
			}
			sc.sections = append(sc.sections, s)
		}
		if first == "server" && isProxy(sc.sections[len(sc.sections)-1].kind) {
			servers = append(servers, rawServer{name: second, line: num, raw: line, after: len(others) - firstOther})
			continue
		}
		others = append(others, rawLine{num, line})
	}
	cut()
	return sc, ""
}

// twoFields returns the first two words of a line with no quote, escape
// or comment.
func twoFields(line string) (string, string) {
	first, i := nextBlankWord(line, 0)
	second, _ := nextBlankWord(line, i)
	return first, second
}

// sameFrame reports, as a non-empty reason, the first difference between
// the files outside the server lines of backend and listen sections.
// Lines are compared byte for byte, so that no difference of spacing,
// quoting, escaping or length can hide; blank and comment-only lines are
// skipped (HAProxy skips them too, and a template may repeat a comment per
// server). Equal frames give the same sections, one to one.
func sameFrame(o, n *scanned) string {
	var ol, nl []rawLine
	for _, s := range o.sections {
		ol = append(ol, s.others...)
	}
	for _, s := range n.sections {
		nl = append(nl, s.others...)
	}
	for i := range max(len(ol), len(nl)) {
		switch {
		case i >= len(ol):
			return fmt.Sprintf("line %d added: %q", nl[i].num, nl[i].text)
		case i >= len(nl):
			return fmt.Sprintf("line %d of the old file removed: %q", ol[i].num, ol[i].text)
		case ol[i].text != nl[i].text:
			return fmt.Sprintf("line %d is not the same (was line %d): %q", nl[i].num, ol[i].num, nl[i].text)
		}
	}
	if len(o.sections) != len(n.sections) {
		return "the files have different sections" // cannot happen with equal frames
	}
	return ""
}

// ignorable reports whether HAProxy reads nothing from a line: only spaces
// and tabs, then optionally a '#' and a comment.
func ignorable(l string) bool {
	t := strings.TrimLeft(l, " \t")
	return t == "" || t[0] == '#'
}

// knownGround reports, as a non-empty reason, a construct anywhere in the
// file that changes how HAProxy reads or judges server lines in ways the
// fast check does not model:
//   - conditional blocks and diagnostics (.if, .alert...): which lines
//     HAProxy reads would depend on the conditions;
//   - a proxy mode other than http and tcp (3.0's `mode log` backends take
//     another set of server keywords);
//   - `hash-key` (3.0 hashes servers by address, so addresses matter);
//   - dynamic cookies, generated from each server's address (a collision
//     is reported against the servers);
//   - external and agent checks, which depend on more than the server line.
func knownGround(c *scanned) string {
	for _, s := range c.sections {
		for _, l := range s.others {
			w := append(l.words(), "", "")
			text := strings.Join(w, " ")
			switch {
			case strings.HasPrefix(w[0], "."):
				return fmt.Sprintf("line %d: conditional or diagnostic directive %q", l.num, w[0])
			case w[0] == "mode" && w[1] != "http" && w[1] != "tcp":
				return fmt.Sprintf("line %d: mode %s", l.num, w[1])
			case w[0] == "hash-key", w[0] == "dynamic-cookie-key",
				w[0] == "cookie" && strings.Contains(text, "dynamic"),
				strings.Contains(text, "external-check"), strings.Contains(text, "agent-check"):
				return fmt.Sprintf("line %d: %q is outside what the fast check reasons about", l.num, strings.TrimSpace(text))
			}
		}
	}
	return ""
}

// changes are one section's server differences.
type changes struct {
	add, change, remove []rawServer
}

// sectionChanges compares the server lines of one proxy section: a server
// whose raw line is byte for byte the same, among the same other lines of
// the section, is unchanged, whatever its place among the other servers.
func sectionChanges(os, ns *scannedSection) (changes, string) {
	var sc changes
	if len(os.servers) == len(ns.servers) {
		same := true
		for i := range ns.servers {
			if os.servers[i].raw != ns.servers[i].raw || os.servers[i].after != ns.servers[i].after {
				same = false
				break
			}
		}
		if same {
			return sc, ""
		}
	}
	name := func(s *rawServer) string { return s.name }
	if inOrder(os.servers, name) && inOrder(ns.servers, name) {
		return walkChanges(os, ns), "" // as serf-hb renders a sorted registry
	}
	return matchChanges(os, ns)
}

// walkChanges is sectionChanges of two sections whose servers are in
// ascending name order: one walk, no index.
func walkChanges(os, ns *scannedSection) changes {
	var sc changes
	o, n := os.servers, ns.servers
	walk(len(o), len(n), func(i, j int) int { return strings.Compare(o[i].name, n[j].name) },
		func(i int) { sc.remove = append(sc.remove, o[i]) },
		func(j int) { sc.add = append(sc.add, n[j]) },
		func(i, j int) error {
			if o[i].raw != n[j].raw || o[i].after != n[j].after {
				sc.change = append(sc.change, n[j])
			}
			return nil
		})
	return sc
}

// matchChanges is sectionChanges of two sections in any order, through an
// index of each by name, refusing a name defined twice.
func matchChanges(os, ns *scannedSection) (changes, string) {
	var sc changes
	oldBy := make(map[string]rawServer, len(os.servers))
	for _, s := range os.servers {
		if _, dup := oldBy[s.name]; dup {
			return sc, fmt.Sprintf("server %s/%s defined twice in the old file", os.name, s.name)
		}
		oldBy[s.name] = s
	}
	newBy := make(map[string]bool, len(ns.servers))
	for _, s := range ns.servers {
		if newBy[s.name] {
			return sc, fmt.Sprintf("server %s/%s defined twice (line %d)", ns.name, s.name, s.line)
		}
		newBy[s.name] = true
		prev, ok := oldBy[s.name]
		switch {
		case !ok:
			sc.add = append(sc.add, s)
		case prev.raw != s.raw || prev.after != s.after:
			sc.change = append(sc.change, s)
		}
	}
	for _, s := range os.servers {
		if !newBy[s.name] {
			sc.remove = append(sc.remove, s)
		}
	}
	return sc, ""
}

// affectedSection reports, as a non-empty reason, why the changes sc to
// section s of file c cannot be proved from their lines alone.
//
// default-server: a server line is read with the keywords default-server
// gave it, and some combinations are refused; so a section with one, or
// any defaults section with one (it may be the one the section uses),
// takes no added or changed line (a removal still cannot break anything it
// reads). server-template: it makes names the file does not spell out,
// which a new line could collide with. An explicit `id` or a `track` on
// any server of the section: ids must be unique and tracking needs the
// tracked server's checks, both relations between lines. Added and
// changed lines must come after the section's last other line, where
// they are read with the section's settings complete (HAProxy reads a
// server line with the settings seen so far).
func affectedSection(c *scanned, s *scannedSection, sc changes) string {
	at := fmt.Sprintf("%s %s (line %d)", s.kind, s.name, s.line)
	if len(s.servers) > maxFastServers {
		return fmt.Sprintf("%s: %d servers, more than the fast check reasons about (%d)", at, len(s.servers), maxFastServers)
	}
	adds := len(sc.add)+len(sc.change) > 0
	for _, d := range c.sections {
		if d.kind != "defaults" || !adds {
			continue
		}
		for _, l := range d.others {
			if w := l.words(); len(w) > 0 && w[0] == "default-server" {
				return fmt.Sprintf("%s: default-server in defaults (line %d) may apply to the added or changed server lines", at, l.num)
			}
		}
	}
	last := 0
	for _, l := range s.others {
		w := append(l.words(), "")
		if w[0] == "server-template" || w[0] == "default-server" && adds {
			return fmt.Sprintf("%s: %s at line %d", at, w[0], l.num)
		}
		last = l.num
	}
	for _, srv := range s.servers {
		if !strings.Contains(srv.raw, "id") && !strings.Contains(srv.raw, "track") {
			continue
		}
		for _, w := range words(srv.raw) {
			if w == "id" || w == "track" {
				return fmt.Sprintf("%s: server %s has %q (line %d)", at, srv.name, w, srv.line)
			}
		}
	}
	if adds && totalWeight(s) > maxFastWeight {
		return fmt.Sprintf("%s: total weight over %d", at, maxFastWeight)
	}
	for _, srv := range append(sc.add, sc.change...) {
		if srv.line < last {
			return fmt.Sprintf("%s: server %s (line %d) is not after the section's other lines", at, srv.name, srv.line)
		}
	}
	return ""
}

// totalWeight returns the sum of the weights of a section's servers,
// counting a weight it cannot read as the largest, 256, and none as 1 (a
// section with default-server takes no added line).
func totalWeight(s *scannedSection) int {
	total := 0
	for _, srv := range s.servers {
		w := 1
		if strings.Contains(srv.raw, "weight") {
			w = 256
			prev := ""
			for i, word := range words(srv.raw) {
				if i >= 4 && prev == "weight" {
					if n, ok := plainUint(word); ok && n <= 256 {
						w = int(n)
					}
					break
				}
				prev = word
			}
		}
		total += w
	}
	return total
}

// references returns every token of the file outside its server lines, and
// the targets of `track` on server lines: wherever a removed or changed
// server's name could be used (use-server, track, srv_is_up(be/srv) and the
// other server fetches...). A token is a run of the characters of a server
// name; a name is found wherever it stands alone between other characters.
// A file with `$` or `\` outside server lines could build a name from an
// environment variable or an escape: it gives a reason instead.
func references(c *scanned) (map[string]bool, string) {
	refs := map[string]bool{}
	notName := func(r rune) bool { return r >= 0x80 || !name.Char(byte(r)) }
	for _, s := range c.sections {
		for _, l := range s.others {
			text := strings.Join(l.words(), " ")
			if strings.ContainsAny(text, `$\`) {
				return nil, fmt.Sprintf("line %d: %q may build a server name from a variable or an escape", l.num, text)
			}
			for _, tok := range strings.FieldsFunc(text, notName) {
				refs[tok] = true
			}
		}
		for _, srv := range s.servers {
			if !strings.Contains(srv.raw, "track") {
				continue
			}
			w := splitWords(srv.raw)
			for i := range w {
				if w[i] == "track" && i+1 < len(w) {
					for _, tok := range strings.FieldsFunc(w[i+1], notName) {
						refs[tok] = true
					}
				}
			}
		}
	}
	return refs, ""
}

// maxNameLen bounds a server name (HAProxy 2.6 and 3.0 take 1,000
// characters; Serf node names are host names, at most 253).
const maxNameLen = 255

// checkServerLine returns, as a non-empty reason, why a raw server line is
// outside the fast check's grammar:
//
//	server NAME ADDRESS [KEYWORD...]
//
// separated by spaces and tabs, nothing else on the line (no comment, no
// quote, no escape, no variable: only the characters of names and
// addresses). NAME is 1-255 of A-Z a-z 0-9 _ . : -. ADDRESS is a literal
// IPv4 address, or an IPv6 one with or without brackets, neither
// unspecified nor zoned, then ':' and a port 1-65535 in plain decimal.
// Each KEYWORD at most once, from:
//
//	check  backup  disabled  enabled
//	inter T  fastinter T  downinter T   T a time 1ms to 1d
//	slowstart T                         T a time 0 to 1d
//	rise N  fall N                      N 1-1000
//	weight N                            N 0-256
//	maxconn N  maxqueue N               N 0-1000000000
//	on-marked-down shutdown-sessions
//	on-marked-up shutdown-backup-sessions
//
// where a time is a decimal integer without leading zeros and an optional
// unit ms, s, m, h or d (none means ms). Every word of it is one HAProxy
// 2.6 and 3.0 take whatever the section and the other servers, in a mode
// http or tcp section without default-server (knownGround and
// affectedSection see to those).
func checkServerLine(raw string) string {
	for _, c := range []byte(raw) {
		if c != ' ' && c != '\t' && !name.Char(c) && c != '[' && c != ']' {
			return fmt.Sprintf("character %q is outside the fast check's grammar", c)
		}
	}
	w := strings.FieldsFunc(raw, func(r rune) bool { return r == ' ' || r == '\t' })
	if len(w) < 3 || w[0] != "server" {
		return "not a server line in the fast check's grammar"
	}
	if len(w[1]) > maxNameLen || strings.ContainsAny(w[1], "[]") {
		return fmt.Sprintf("name %q is outside the fast check's grammar", w[1])
	}
	if why := checkAddress(w[2]); why != "" {
		return why
	}
	seen := map[string]bool{}
	for i := 3; i < len(w); i++ {
		kw := w[i]
		if seen[kw] {
			return fmt.Sprintf("keyword %q given twice", kw)
		}
		seen[kw] = true
		arg := ""
		if argKeywords[kw] != nil {
			if i+1 >= len(w) {
				return fmt.Sprintf("keyword %q without its argument", kw)
			}
			i++
			arg = w[i]
			if !argKeywords[kw](arg) {
				return fmt.Sprintf("%s %q is outside the fast check's grammar", kw, arg)
			}
			continue
		}
		if !flagKeywords[kw] {
			return fmt.Sprintf("keyword %q is outside the fast check's grammar", kw)
		}
	}
	if seen["enabled"] && seen["disabled"] {
		return "both enabled and disabled"
	}
	return ""
}

// flagKeywords are the keywords without an argument the grammar takes.
var flagKeywords = map[string]bool{"check": true, "backup": true, "disabled": true, "enabled": true}

// argKeywords are the keywords with one argument the grammar takes, each
// with the test of its argument.
var argKeywords = map[string]func(string) bool{
	"inter":     timeIn(1, day),
	"fastinter": timeIn(1, day),
	"downinter": timeIn(1, day),
	"slowstart": timeIn(0, day),
	"rise":      intIn(1, 1000),
	"fall":      intIn(1, 1000),
	"weight":    intIn(0, 256),
	"maxconn":   intIn(0, 1e9),
	"maxqueue":  intIn(0, 1e9),
	"on-marked-down": func(a string) bool {
		return a == "shutdown-sessions"
	},
	"on-marked-up": func(a string) bool {
		return a == "shutdown-backup-sessions"
	},
}

const day = 24 * 3600 * 1000 // ms

// plainUint reads a decimal integer without sign or leading zeros, at
// most 10 digits.
func plainUint(s string) (int64, bool) {
	if s == "" || len(s) > 10 || (s[0] == '0' && len(s) > 1) {
		return 0, false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

func intIn(lo, hi int64) func(string) bool {
	return func(s string) bool {
		n, ok := plainUint(s)
		return ok && n >= lo && n <= hi
	}
}

// timeIn tests a time in milliseconds, as HAProxy's timer keywords read it.
func timeIn(lo, hi int64) func(string) bool {
	units := []struct {
		suffix string
		ms     int64
	}{{"ms", 1}, {"s", 1000}, {"m", 60 * 1000}, {"h", 3600 * 1000}, {"d", day}}
	return func(s string) bool {
		mult := int64(1)
		for _, u := range units {
			if num, ok := strings.CutSuffix(s, u.suffix); ok {
				s, mult = num, u.ms
				break
			}
		}
		n, ok := plainUint(s)
		return ok && n*mult >= lo && n*mult <= hi
	}
}

// checkAddress returns, as a non-empty reason, why a server address is
// outside the grammar.
func checkAddress(a string) string {
	i := strings.LastIndexByte(a, ':')
	if i <= 0 {
		return fmt.Sprintf("address %q is not IP:PORT", a)
	}
	host, port := a[:i], a[i+1:]
	bracketed := len(host) > 2 && host[0] == '[' && host[len(host)-1] == ']'
	if bracketed {
		host = host[1 : len(host)-1]
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || ip.Zone() != "" || ip.Unmap().IsUnspecified() || (bracketed && !ip.Is6()) || strings.ContainsAny(host, "[]") {
		return fmt.Sprintf("address %q is not a literal IP:PORT the fast check takes", a)
	}
	if !intIn(1, 65535)(port) {
		return fmt.Sprintf("port %q of address %q is not 1-65535", port, a)
	}
	return ""
}
