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
// server is named anywhere else in the file. The whole file is never
// reloaded on this proof alone: a reload runs the full check first.
func FastCheck(old, new []byte) (ok bool, why string) {
	if bytes.Equal(old, new) {
		return true, "identical"
	}
	o, n := Parse(old), Parse(new)
	ol, nl := splitLines(old), splitLines(new)
	if err := sameFrame(o, n, ol, nl); err != "" {
		return false, err
	}
	if err := knownGround(n); err != "" {
		return false, err
	}
	var refs map[string]bool // tokens naming servers elsewhere, built on demand
	var added, changed, removed int
	for i := range n.Sections {
		ns, os := &n.Sections[i], &o.Sections[i]
		if !proxyKinds[ns.Kind] {
			continue
		}
		sc, why := sectionChanges(os, ns, ol, nl)
		if why != "" {
			return false, why
		}
		if len(sc.add)+len(sc.change)+len(sc.remove) == 0 {
			continue
		}
		if why := affectedSection(ns, sc); why != "" {
			return false, why
		}
		for _, s := range append(sc.add, sc.change...) {
			if why := checkServerLine(nl[s.Line-1]); why != "" {
				return false, fmt.Sprintf("server %s/%s at line %d: %s", ns.Name, s.Name, s.Line, why)
			}
		}
		for _, s := range append(sc.remove, sc.change...) {
			if refs == nil {
				var why string
				if refs, why = references(n); why != "" {
					return false, why
				}
			}
			if refs[s.Name] {
				return false, fmt.Sprintf("server %s/%s is removed or changed and its name appears elsewhere in the file (track, use-server, an ACL...)", ns.Name, s.Name)
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

// splitLines returns the file's lines, numbered as Parse numbers them
// (line i+1 is element i), whole: Parse ends a line at a CR, this keeps
// what follows it, so that no byte of the file escapes the comparison.
func splitLines(cfg []byte) []string {
	return strings.Split(string(cfg), "\n")
}

// sameFrame reports, as a non-empty reason, the first difference between
// the files outside the server lines of backend and listen sections.
// Lines are compared byte for byte, so that no difference of spacing,
// quoting, escaping or length can hide; blank and comment-only lines are
// skipped (HAProxy skips them too, and a template may repeat a comment per
// server); a line holding a CR or another control character is never
// skipped.
func sameFrame(o, n *Config, ol, nl []string) string {
	if len(o.Sections) != len(n.Sections) {
		return "the files have different sections"
	}
	oi, ni := frame(o, ol), frame(n, nl)
	for {
		a, aok := oi()
		b, bok := ni()
		switch {
		case !aok && !bok:
			return ""
		case !aok:
			return fmt.Sprintf("line %d added: %q", b, nl[b-1])
		case !bok:
			return fmt.Sprintf("line %d of the old file removed: %q", a, ol[a-1])
		case ol[a-1] != nl[b-1]:
			return fmt.Sprintf("line %d is not the same (was line %d): %q", b, a, nl[b-1])
		}
	}
}

// frame iterates over the line numbers of c's lines that are neither
// server lines of a proxy section nor blank or comment-only.
func frame(c *Config, ls []string) func() (int, bool) {
	server := make([]bool, len(ls)+1)
	for _, s := range c.Sections {
		for _, srv := range s.Servers {
			server[srv.Line] = true
		}
	}
	i := 0
	return func() (int, bool) {
		for i < len(ls) {
			i++
			if !server[i] && !ignorable(ls[i-1]) {
				return i, true
			}
		}
		return 0, false
	}
}

// ignorable reports whether HAProxy reads nothing from a line: only spaces
// and tabs, then optionally a '#' and a comment of plain text.
func ignorable(l string) bool {
	t := strings.TrimLeft(l, " \t")
	if t == "" {
		return true
	}
	if t[0] != '#' {
		return false
	}
	for _, c := range []byte(t) {
		if c != '\t' && (c < ' ' || c > '~') {
			return false
		}
	}
	return true
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
func knownGround(c *Config) string {
	for _, s := range c.Sections {
		for _, l := range s.others {
			w := append(strings.Fields(l.Text), "")
			switch {
			case strings.HasPrefix(w[0], "."):
				return fmt.Sprintf("line %d: conditional or diagnostic directive %q", l.Num, w[0])
			case w[0] == "mode" && w[1] != "http" && w[1] != "tcp":
				return fmt.Sprintf("line %d: mode %s", l.Num, w[1])
			case w[0] == "hash-key", w[0] == "dynamic-cookie-key",
				w[0] == "cookie" && strings.Contains(l.Text, "dynamic"),
				strings.Contains(l.Text, "external-check"), strings.Contains(l.Text, "agent-check"):
				return fmt.Sprintf("line %d: %q is outside what the fast check reasons about", l.Num, l.Text)
			}
		}
	}
	return ""
}

// changes are one section's server differences.
type changes struct {
	add, change, remove []Server
}

// sectionChanges compares the server lines of one proxy section: a server
// whose raw line is byte for byte the same is unchanged, whatever its
// place among the others.
func sectionChanges(os, ns *Section, ol, nl []string) (changes, string) {
	var sc changes
	if len(os.Servers) == len(ns.Servers) {
		same := true
		for i := range ns.Servers {
			if ol[os.Servers[i].Line-1] != nl[ns.Servers[i].Line-1] {
				same = false
				break
			}
		}
		if same {
			return sc, ""
		}
	}
	oldBy := make(map[string]Server, len(os.Servers))
	for _, s := range os.Servers {
		if _, dup := oldBy[s.Name]; dup {
			return sc, fmt.Sprintf("server %s/%s defined twice in the old file", os.Name, s.Name)
		}
		oldBy[s.Name] = s
	}
	newBy := make(map[string]bool, len(ns.Servers))
	for _, s := range ns.Servers {
		if newBy[s.Name] {
			return sc, fmt.Sprintf("server %s/%s defined twice (line %d)", ns.Name, s.Name, s.Line)
		}
		newBy[s.Name] = true
		prev, ok := oldBy[s.Name]
		switch {
		case !ok:
			sc.add = append(sc.add, s)
		case ol[prev.Line-1] != nl[s.Line-1]:
			sc.change = append(sc.change, s)
		}
	}
	for _, s := range os.Servers {
		if !newBy[s.Name] {
			sc.remove = append(sc.remove, s)
		}
	}
	return sc, ""
}

// affectedSection reports, as a non-empty reason, why the changes sc to
// section s cannot be proved from their lines alone.
//
// default-server: a server line is read with the keywords default-server
// gave it, and some combinations are refused; so a section with one takes
// no added or changed line (a removal still cannot break anything it
// reads). server-template: it makes names the file does not spell out,
// which a new line could collide with. An explicit `id` or a `track` on
// any server of the section: ids must be unique and tracking needs the
// tracked server's checks, both relations between lines. Added and
// changed lines must come after the section's last other line, where
// they are read with the section's settings complete (HAProxy reads a
// server line with the settings seen so far).
func affectedSection(s *Section, sc changes) string {
	at := fmt.Sprintf("%s %s (line %d)", s.Kind, s.Name, s.Line)
	if len(s.Servers) > maxFastServers {
		return fmt.Sprintf("%s: %d servers, more than the fast check reasons about (%d)", at, len(s.Servers), maxFastServers)
	}
	if s.DefaultServer != 0 && len(sc.add)+len(sc.change) > 0 {
		return fmt.Sprintf("%s: default-server (line %d) applies to the added or changed server lines", at, s.DefaultServer)
	}
	last := 0
	for _, l := range s.others {
		w := append(strings.Fields(l.Text), "")
		switch w[0] {
		case "server-template", "default-server":
			if w[0] == "server-template" || len(sc.add)+len(sc.change) > 0 {
				return fmt.Sprintf("%s: %s at line %d", at, w[0], l.Num)
			}
		}
		last = l.Num
	}
	for _, srv := range s.Servers {
		for _, w := range srv.Keywords {
			if w == "id" || w == "track" {
				return fmt.Sprintf("%s: server %s has %q (line %d)", at, srv.Name, w, srv.Line)
			}
		}
	}
	for _, srv := range append(sc.add, sc.change...) {
		if srv.Line < last {
			return fmt.Sprintf("%s: server %s (line %d) is not after the section's other lines", at, srv.Name, srv.Line)
		}
	}
	return ""
}

// references returns every token of the file outside its server lines, and
// the targets of `track` on server lines: wherever a removed or changed
// server's name could be used (use-server, track, srv_is_up(be/srv) and the
// other server fetches...). A token is a run of the characters of a server
// name; a name is found wherever it stands alone between other characters.
// A file with `$` or `\` outside server lines could build a name from an
// environment variable or an escape: it gives a reason instead.
func references(c *Config) (map[string]bool, string) {
	refs := map[string]bool{}
	isName := func(r rune) bool { return r < 0x80 && nameChar(byte(r)) }
	for _, s := range c.Sections {
		for _, l := range s.others {
			if strings.ContainsAny(l.Text, `$\`) {
				return nil, fmt.Sprintf("line %d: %q may build a server name from a variable or an escape", l.Num, l.Text)
			}
			for _, tok := range strings.FieldsFunc(l.Text, func(r rune) bool { return !isName(r) }) {
				refs[tok] = true
			}
		}
		for _, srv := range s.Servers {
			for i, w := range srv.Keywords {
				if w == "track" && i+1 < len(srv.Keywords) {
					for _, tok := range strings.FieldsFunc(srv.Keywords[i+1], func(r rune) bool { return !isName(r) }) {
						refs[tok] = true
					}
				}
			}
		}
	}
	return refs, ""
}

func nameChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == ':' || c == '-'
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
		if c != ' ' && c != '\t' && !nameChar(c) && c != '[' && c != ']' {
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
