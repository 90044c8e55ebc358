package haproxy

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/serf-hb/serf-hb/internal/name"
)

// fcBase is the file the table's changes start from: the embedded
// template's shape, plus a second backend a frontend rule names a server
// of.
const fcBase = `# generated
global
    log stdout format raw local0
    maxconn 4096

defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s

frontend fe
    bind *:80
    acl b2up srv_is_up(other/watched)
    use_backend other if b2up
    default_backend nodes

backend nodes
    balance roundrobin
    option httpchk GET /
    server web1 10.0.0.1:3000 check
    server web2 10.0.0.2:3000 check

backend other
    balance roundrobin
    server watched 10.0.1.1:80 check
    server plain 10.0.1.2:80
`

// TestFastCheck: what the fast check proves and what it leaves to the
// full check, one rule per case.
func TestFastCheck(t *testing.T) {
	tests := []struct {
		name    string
		old     string // fcBase when empty
		edit    func(string) string
		ok      bool
		because string // a word of the reason
	}{
		{"identical", "", func(s string) string { return s }, true, "identical"},
		{"join", "", addAfter("web2 10.0.0.2:3000 check", "    server web3 10.0.0.3:3000 check"), true, "1 server lines added"},
		{"join with every keyword", "", addAfter("web2 10.0.0.2:3000 check",
			"    server web3 10.0.0.3:3000 check inter 1s fastinter 500ms downinter 2m rise 1 fall 2 weight 256 backup disabled maxconn 100 maxqueue 0 slowstart 0 on-marked-down shutdown-sessions on-marked-up shutdown-backup-sessions"), true, "added"},
		{"join ipv6", "", addAfter("web2 10.0.0.2:3000 check", "    server v6 [2001:db8::1]:65535 check\n    server v6b ::1:1"), true, "2 server lines added"},
		{"leave", "", drop("    server web1 10.0.0.1:3000 check\n"), true, "1 removed"},
		{"readdress and reweight", "", swap("web2 10.0.0.2:3000 check", "web2 10.0.0.9:4000 check weight 0"), true, "1 changed"},
		{"comment lines come and go", "", swap("    server web1", "    # a comment\n\n    server web1"), true, "nothing else"},
		{"last server leaves", "", drop("    server web1 10.0.0.1:3000 check\n    server web2 10.0.0.2:3000 check\n"), true, "2 removed"},

		{"other line changed", "", swap("timeout client 30s", "timeout client 31s"), false, "not the same"},
		{"other line respaced", "", swap("timeout client 30s", "timeout  client 30s"), false, "not the same"},
		{"line added", "", swap("    maxconn 4096\n", "    maxconn 4096\n    nbthread 2\n"), false, "not the same"},
		{"duplicate name", "", addAfter("web2 10.0.0.2:3000 check", "    server web1 10.0.0.3:3000 check"), false, "twice"},
		{"host name", "", addAfter("web2 10.0.0.2:3000 check", "    server web3 example.com:3000 check"), false, "address"},
		{"no port", "", addAfter("web2 10.0.0.2:3000 check", "    server web3 10.0.0.3 check"), false, "address"},
		{"port 0", "", addAfter("web2 10.0.0.2:3000 check", "    server web3 10.0.0.3:0 check"), false, "port"},
		{"port 65536", "", addAfter("web2 10.0.0.2:3000 check", "    server web3 10.0.0.3:65536"), false, "port"},
		{"port with a sign", "", addAfter("web2 10.0.0.2:3000 check", "    server web3 10.0.0.3:+80"), false, "character"},
		{"unspecified address", "", addAfter("web2 10.0.0.2:3000 check", "    server web3 0.0.0.0:80"), false, "address"},
		{"bracketed ipv4", "", addAfter("web2 10.0.0.2:3000 check", "    server web3 [10.0.0.3]:80"), false, "address"},
		{"weight 257", "", addAfter("web2 10.0.0.2:3000 check", "    server web3 10.0.0.3:80 weight 257"), false, "weight"},
		{"inter 0", "", addAfter("web2 10.0.0.2:3000 check", "    server web3 10.0.0.3:80 check inter 0"), false, "inter"},
		{"inter in us", "", addAfter("web2 10.0.0.2:3000 check", "    server web3 10.0.0.3:80 check inter 500us"), false, "inter"},
		{"inter over a day", "", addAfter("web2 10.0.0.2:3000 check", "    server web3 10.0.0.3:80 check inter 25h"), false, "inter"},
		{"rise 0", "", addAfter("web2 10.0.0.2:3000 check", "    server web3 10.0.0.3:80 check rise 0"), false, "rise"},
		{"keyword twice", "", addAfter("web2 10.0.0.2:3000 check", "    server web3 10.0.0.3:80 check check"), false, "twice"},
		{"unknown keyword", "", addAfter("web2 10.0.0.2:3000 check", "    server web3 10.0.0.3:80 chek"), false, "chek"},
		{"explicit id", "", addAfter("web2 10.0.0.2:3000 check", "    server web3 10.0.0.3:80 id 7"), false, "id"},
		{"track", "", addAfter("web2 10.0.0.2:3000 check", "    server web3 10.0.0.3:80 track nodes/web1"), false, "track"},
		{"cookie", "", addAfter("web2 10.0.0.2:3000 check", "    server web3 10.0.0.3:80 cookie w3"), false, "cookie"},
		{"comment on the line", "", addAfter("web2 10.0.0.2:3000 check", "    server web3 10.0.0.3:80 check # new"), false, "character"},
		{"quoted", "", addAfter("web2 10.0.0.2:3000 check", `    server "web3" 10.0.0.3:80`), false, "character"},
		{"variable", "", addAfter("web2 10.0.0.2:3000 check", `    server web3 "${IP}":80`), false, "character"},
		{"CR", "", addAfter("web2 10.0.0.2:3000 check", "    server web3 10.0.0.3:80\r junk"), false, "character"},
		{"bad name", "", addAfter("web2 10.0.0.2:3000 check", "    server web/3 10.0.0.3:80"), false, "character"},
		{"enabled and disabled", "", addAfter("web2 10.0.0.2:3000 check", "    server web3 10.0.0.3:80 enabled disabled"), false, "both"},
		{"server before the section's settings", "", swap("    balance roundrobin\n", "    server web3 10.0.0.3:80\n    balance roundrobin\n"), false, "not after"},
		{"referenced server removed", "", drop("    server watched 10.0.1.1:80 check\n"), false, "appears elsewhere"},
		{"referenced server changed", "", swap("watched 10.0.1.1:80 check", "watched 10.0.1.1:80"), false, "appears elsewhere"},
		{"server moved past default-server", strings.Replace(fcBase, "    server web2 10.0.0.2:3000 check\n", "    server web2 10.0.0.2:3000 check\n    default-server track other/watched\n", 1),
			func(s string) string {
				return strings.Replace(drop("    server web1 10.0.0.1:3000 check\n")(s), "watched\n", "watched\n    server web1 10.0.0.1:3000 check\n", 1)
			}, false, "default-server"},
		{"server moved past another setting", "", func(s string) string {
			return strings.Replace(drop("    server web1 10.0.0.1:3000 check\n")(s), "    balance roundrobin\n", "    server web1 10.0.0.1:3000 check\n    balance roundrobin\n", 1)
		}, false, "not after"},
		{"servers reordered", "", swap("    server web1 10.0.0.1:3000 check\n    server web2 10.0.0.2:3000 check\n", "    server web2 10.0.0.2:3000 check\n    server web1 10.0.0.1:3000 check\n"), true, "0 server lines added, 0 changed, 0 removed"},
		{"server moved to another backend", "", func(s string) string {
			return strings.Replace(drop("    server plain 10.0.1.2:80\n")(s), "    server web2", "    server plain 10.0.1.2:80\n    server web2", 1)
		}, true, "1 server lines added, 0 changed, 1 removed"},

		{"default-server", strings.Replace(fcBase, "    balance roundrobin\n    option", "    balance roundrobin\n    default-server inter 3s\n    option", 1),
			addAfter("web2 10.0.0.2:3000 check", "    server web3 10.0.0.3:3000 check"), false, "default-server"},
		{"default-server, a leave", strings.Replace(fcBase, "    balance roundrobin\n    option", "    balance roundrobin\n    default-server inter 3s\n    option", 1),
			drop("    server web1 10.0.0.1:3000 check\n"), true, "1 removed"},
		{"default-server in defaults", strings.Replace(fcBase, "    timeout server 30s\n", "    timeout server 30s\n    default-server inter 3s\n", 1),
			addAfter("web2 10.0.0.2:3000 check", "    server web3 10.0.0.3:3000 check"), false, "default-server"},
		{"server-template", strings.Replace(fcBase, "    option httpchk GET /\n", "    option httpchk GET /\n    server-template web 3 10.0.2.1:80\n", 1),
			addAfter("web2 10.0.0.2:3000 check", "    server web9 10.0.0.3:3000 check"), false, "server-template"},
		{"an id elsewhere in the backend", strings.Replace(fcBase, "web1 10.0.0.1:3000 check", "web1 10.0.0.1:3000 check id 3", 1),
			addAfter("web2 10.0.0.2:3000 check", "    server web3 10.0.0.3:3000 check"), false, "id"},
		{"use-server names the leaver", strings.Replace(fcBase, "    option httpchk GET /\n", "    option httpchk GET /\n    use-server web1 if { path /one }\n", 1),
			drop("    server web1 10.0.0.1:3000 check\n"), false, "appears elsewhere"},
		{"tracked from another backend", strings.Replace(fcBase, "plain 10.0.1.2:80", "plain 10.0.1.2:80 track nodes/web2", 1),
			drop("    server web2 10.0.0.2:3000 check\n"), false, "appears elsewhere"},
		{"escape in the file", strings.Replace(fcBase, "bind *:80", `bind *:80 name \x61`, 1),
			drop("    server web1 10.0.0.1:3000 check\n"), false, "escape"},
		{"conditional block", strings.Replace(fcBase, "    maxconn 4096\n", "    maxconn 4096\n.if defined(X)\n.endif\n", 1),
			addAfter("web2 10.0.0.2:3000 check", "    server web3 10.0.0.3:3000 check"), false, "conditional"},
		{"mode log", strings.Replace(fcBase, "backend other\n", "backend logs\n    mode log\nbackend other\n", 1),
			addAfter("web2 10.0.0.2:3000 check", "    server web3 10.0.0.3:3000 check"), false, "mode log"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := tt.old
			if old == "" {
				old = fcBase
			}
			new := tt.edit(old)
			if new == old && tt.name != "identical" {
				t.Fatalf("the edit changed nothing")
			}
			ok, why := FastCheck([]byte(old), []byte(new))
			if ok != tt.ok || !strings.Contains(why, tt.because) {
				t.Errorf("FastCheck = %v, %q; want %v and a reason with %q", ok, why, tt.ok, tt.because)
			}
		})
	}
}

func addAfter(anchor, lines string) func(string) string {
	return func(s string) string {
		if !strings.Contains(s, anchor) {
			panic("no " + anchor)
		}
		return strings.Replace(s, anchor, anchor+"\n"+lines, 1)
	}
}

func drop(text string) func(string) string { return swap(text, "") }

func swap(from, to string) func(string) string {
	return func(s string) string {
		if !strings.Contains(s, from) {
			panic("no " + from)
		}
		return strings.Replace(s, from, to, 1)
	}
}

// TestFastCheckLimits: a backend too large or too heavy for the claim
// falls back.
func TestFastCheckLimits(t *testing.T) {
	many := func(n int, kw string) string {
		var b strings.Builder
		for i := range n {
			b.WriteString("    server s" + strconv.Itoa(i) + " 10.0.0.1:80" + kw + "\n")
		}
		return b.String()
	}
	for _, tt := range []struct {
		name    string
		servers string
		ok      bool
	}{
		{"20,000 servers", many(maxFastServers-2, ""), true},
		{"20,001 servers", many(maxFastServers-1, ""), false},
		{"weight 100,000", many(390, " weight 256"), true},
		{"weight over 100,000", many(391, " weight 256"), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			old := fcBase
			new := strings.Replace(fcBase, "    server web2 10.0.0.2:3000 check\n", "    server web2 10.0.0.2:3000 check\n"+tt.servers, 1)
			if ok, why := FastCheck([]byte(old), []byte(new)); ok != tt.ok {
				t.Errorf("FastCheck = %v, %q; want %v", ok, why, tt.ok)
			}
		})
	}
}

// FuzzFastCheck holds FastCheck to what Parse, written apart, reads of
// the files it passes: the same sections, and every server line not in
// the old file a name HAProxy takes and a literal IP:PORT. (That HAProxy
// accepts them is TestFastCheckProperty's work.)
func FuzzFastCheck(f *testing.F) {
	f.Add([]byte(fcBase), []byte(strings.Replace(fcBase, "    server web2", "    server web3 10.0.0.3:80 check\n    server web2", 1)))
	f.Add([]byte(fcBase), []byte(strings.Replace(fcBase, "    server web2 10.0.0.2:3000 check\n", "", 1)))
	f.Add([]byte(fcBase), []byte(strings.Replace(fcBase, "10.0.0.2:3000 check", "[::1]:1 weight 0 inter 1d", 1)))
	f.Add([]byte("backend b\n server a 1.1.1.1:1\n"), []byte("backend b\n server a 1.1.1.1:1\r\n server b 1.1.1.1:1 \"x\"\n"))
	f.Fuzz(func(t *testing.T, old, new []byte) {
		if ok, why := FastCheck(old, old); !ok {
			t.Fatalf("FastCheck(old, old) = false, %q", why)
		}
		ok, why := FastCheck(old, new)
		if !ok {
			return
		}
		o, n := Parse(old), Parse(new)
		if len(o.Sections) != len(n.Sections) {
			t.Fatalf("FastCheck passed (%s) files Parse reads with %d and %d sections", why, len(o.Sections), len(n.Sections))
		}
		was := map[string]bool{}
		for l := range strings.SplitSeq(string(old), "\n") {
			was[l] = true
		}
		nl := strings.Split(string(new), "\n")
		for i, s := range n.Sections {
			if o.Sections[i].Kind != s.Kind || o.Sections[i].Name != s.Name {
				t.Fatalf("FastCheck passed (%s) files whose section %d differs: %s %s, was %s %s", why, i, s.Kind, s.Name, o.Sections[i].Kind, o.Sections[i].Name)
			}
			for _, srv := range s.Servers {
				if was[nl[srv.Line-1]] {
					continue
				}
				if !name.Valid(srv.Name) || !srv.IP.IsValid() || srv.Port < 1 || srv.Port > 65535 {
					t.Fatalf("FastCheck passed (%s) a new server line Parse reads as name %q address %q: %q", why, srv.Name, srv.Address, nl[srv.Line-1])
				}
			}
		}
	})
}

// TestSectionChangesWalkMatches: on two sections in name order, the walk
// finds the adds, changes and removals the index finds, in the same
// order; out of order, sectionChanges takes the index.
func TestSectionChangesWalkMatches(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 2026))
	section := func(shuffle bool) *scannedSection {
		var b strings.Builder
		b.WriteString("backend b\n    balance roundrobin\n")
		var lines []string
		for i := range 12 {
			if rng.IntN(2) == 0 {
				lines = append(lines, fmt.Sprintf("    server s%02d 127.0.21.%d:80 check\n", i, 1+rng.IntN(2)))
			}
		}
		if shuffle {
			rng.Shuffle(len(lines), func(a, b int) { lines[a], lines[b] = lines[b], lines[a] })
		}
		b.WriteString(strings.Join(lines, ""))
		sc, why := scan(b.String())
		if why != "" {
			t.Fatal(why)
		}
		return &sc.sections[1]
	}
	names := func(rs []rawServer) (s []string) {
		for _, r := range rs {
			s = append(s, r.name+"@"+strconv.Itoa(r.line))
		}
		return s
	}
	walked := 0
	for i := range 2000 {
		o, n := section(false), section(i%4 == 0)
		indexed, why := matchChanges(o, n)
		got, gwhy := sectionChanges(o, n)
		if why != "" || gwhy != "" {
			t.Fatalf("case %d: %q / %q; no name is there twice", i, gwhy, why)
		}
		if i%4 != 0 && len(n.servers) > 1 {
			walked++
			if w := walkChanges(o, n); !reflect.DeepEqual(w, indexed) {
				t.Fatalf("case %d: walk %v, index %v", i, w, indexed)
			}
		}
		for _, k := range [][2][]rawServer{{got.add, indexed.add}, {got.change, indexed.change}, {got.remove, indexed.remove}} {
			if !slices.Equal(names(k[0]), names(k[1])) {
				t.Fatalf("case %d: sectionChanges %v, index %v", i, names(k[0]), names(k[1]))
			}
		}
	}
	if walked < 1000 {
		t.Fatalf("only %d cases walked", walked)
	}
}

// totalWeight reads the first `weight N` after a server line's address,
// quoted or not; a weight it cannot read counts as the largest, 256, and
// a line without one as 1.
func TestTotalWeight(t *testing.T) {
	for _, tc := range []struct {
		line string
		want int
	}{
		{"server a 10.0.0.1:80", 1},
		{"server a 10.0.0.1:80 check weight 7", 7},
		{"server a 10.0.0.1:80 weight 7 weight 9", 7},
		{"server a 10.0.0.1:80 \"weight\" '12'", 12},
		{"server a 10.0.0.1:80 weight 300", 256},
		{"server a 10.0.0.1:80 weight 07", 256},
		{"server a 10.0.0.1:80 weight", 256},
		{"server a 10.0.0.1:80 weight weight 3", 256},
		{"server weight 10.0.0.1:80 check", 256},
		{"server a weight 5", 256},
		{"server a 10.0.0.1:80 check # weight 5", 256},
	} {
		s := &scannedSection{servers: []rawServer{{raw: "    " + tc.line}}}
		if got := totalWeight(s); got != tc.want {
			t.Errorf("%q: weight %d, want %d", tc.line, got, tc.want)
		}
	}
}
