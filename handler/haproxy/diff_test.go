package haproxy

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// head is the start of every Diff test file: backend b begins at line 5.
const head = "global\n    maxconn 100\nfrontend fe\n    bind :80\nbackend b\n    balance roundrobin\n"

// names lists the server names of each list of a BackendPlan, for
// comparing plans without line numbers and addresses.
func names(p Plan) map[string][]string {
	m := map[string][]string{}
	for _, b := range p {
		for op, list := range map[string][]Server{"add": b.Add, "remove": b.Remove, "readdress": b.Readdress, "reweight": b.Reweight} {
			for _, s := range list {
				m[b.Backend+" "+op] = append(m[b.Backend+" "+op], s.Name)
			}
		}
	}
	return m
}

func TestDiffLive(t *testing.T) {
	a := "    server a 10.0.0.1:80 check\n"
	bb := "    server bb 10.0.0.2:80 check\n"
	tests := []struct {
		name     string
		old, new string
		want     map[string][]string
	}{
		{"same", head + a, head + a, map[string][]string{}},
		{"comments and spacing", head + a, "# new comment\n" + strings.ReplaceAll(head, "    ", "\t") + a + "\n\n", map[string][]string{}},
		{"servers reordered", head + a + bb, head + bb + a, map[string][]string{}},
		{"join", head + a, head + a + bb, map[string][]string{"b add": {"bb"}}},
		{"join first", head + bb, head + a + bb, map[string][]string{"b add": {"a"}}},
		{"leave", head + a + bb, head + a, map[string][]string{"b remove": {"bb"}}},
		{"last leaves", head + a, head, map[string][]string{"b remove": {"a"}}},
		{"readdress", head + a, head + "    server a 10.0.0.9:81 check\n", map[string][]string{"b readdress": {"a"}}},
		{"same address written otherwise", head + "    server a ::1:80\n", head + "    server a [::1]:80\n", map[string][]string{}},
		{"reweight", head + a, head + "    server a 10.0.0.1:80 check weight 5\n", map[string][]string{"b reweight": {"a"}}},
		{"weight 1 written out", head + a, head + "    server a 10.0.0.1:80 weight 1 check\n", map[string][]string{}},
		{"both", head + a, head + "    server a 10.0.0.9:80 weight 2 check\n", map[string][]string{"b readdress": {"a"}, "b reweight": {"a"}}},
		{"swap", head + a, head + bb, map[string][]string{"b add": {"bb"}, "b remove": {"a"}}},
		{"two backends", head + a + "backend c\n" + bb, head + a + bb + "backend c\n",
			map[string][]string{"b add": {"bb"}, "c remove": {"bb"}}},
		{"listen", "listen l\n    bind :80\n" + a, "listen l\n    bind :80\n" + a + bb, map[string][]string{"l add": {"bb"}}},
		{"consistent hashing", "backend b\n    balance source\n    hash-type consistent\n" + a, "backend b\n    balance source\n    hash-type consistent\n" + a + bb, map[string][]string{"b add": {"bb"}}},
		{"static-rr readdress", "backend b\n    balance static-rr\n" + a, "backend b\n    balance static-rr\n    server a 10.0.0.9:80 check\n", map[string][]string{"b readdress": {"a"}}},
		{"default-server, leave", head + "    default-server inter 3s\n" + a + bb, head + "    default-server inter 3s\n" + a, map[string][]string{"b remove": {"bb"}}},
		{"live keywords", head, head + "    server n 10.0.0.3:80 check inter 2s rise 2 fall 3 backup enabled sni str(x) source 10.0.0.1 usesrc clientip\n", map[string][]string{"b add": {"n"}}},
		{"hostname kept", head + "    server h web.example:80\n", head + "    server h web.example:80\n" + bb, map[string][]string{"b add": {"bb"}}},
		{"duplicates untouched", head + a + a + "backend c\n", head + a + a + "backend c\n" + bb, map[string][]string{"c add": {"bb"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Diff([]byte(tt.old), []byte(tt.new))
			if err != nil {
				t.Fatalf("Diff: %v", err)
			}
			if got := names(p); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("plan %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDiffPlanDetails(t *testing.T) {
	old := head + "    server a 10.0.0.1:80 check\n    server gone 10.0.0.5:80\n"
	new := head + "    server a [::1]:8080 weight 4 check\n    server n 10.0.0.2:81 check inter 2s\n"
	p, err := Diff([]byte(old), []byte(new))
	if err != nil {
		t.Fatal(err)
	}
	if len(p) != 1 || !reflect.DeepEqual(p.Backends(), []string{"b"}) {
		t.Fatalf("plan %+v, want one backend b", p)
	}
	b := p[0]
	if s := b.Readdress[0]; s.IP.String() != "::1" || s.Port != 8080 {
		t.Errorf("readdress to %v port %d, want ::1 8080", s.IP, s.Port)
	}
	if s := b.Reweight[0]; s.Weight != 4 {
		t.Errorf("reweight to %d, want 4", s.Weight)
	}
	if s := b.Add[0]; s.Name != "n" || !s.Check || !reflect.DeepEqual(s.Keywords, []string{"inter", "2s"}) || s.Line != 8 {
		t.Errorf("add %+v, want n with check, inter 2s, line 8", s)
	}
	if s := b.Remove[0]; s.Name != "gone" || s.Line != 8 {
		t.Errorf("remove %+v, want gone from line 8 of the old file", s)
	}
}

func TestDiffNotLive(t *testing.T) {
	a := "    server a 10.0.0.1:80 check\n"
	tests := []struct {
		name, old, new, reason string
	}{
		{"other line changed", head + a, strings.Replace(head, "maxconn 100", "maxconn 200", 1) + a,
			`line 2 changed: "maxconn 200" (was "maxconn 100")`},
		{"line added", head + a, head + "    option httpchk\n" + a, `line 7 added: "option httpchk"`},
		{"line removed", head + "    option httpchk\n" + a, head + a, `line 7 of the old file removed: "option httpchk"`},
		{"line added at the end", head + a, head + a + "    option httpchk\n", `line 8 added: "option httpchk"`},
		{"balance changed", head + a, strings.Replace(head, "roundrobin", "leastconn", 1) + a, `line 6 changed: "balance leastconn" (was "balance roundrobin")`},
		{"new backend", head + a, head + a + "backend c\n    server x 10.0.0.3:80\n", "new backend c at line 8"},
		{"new backend between", head + a, "global\n    maxconn 100\nfrontend fe\n    bind :80\nbackend a0\n    balance first\n" + head[strings.Index(head, "backend b"):] + a, "new backend a0 at line 5"},
		{"backend removed", head + a + "listen c\n    bind :81\n", head + a, "listen c removed (line 8 of the old file)"},
		{"peers server changed", head + a + "peers p\n    server p1 10.0.0.1:1024\n", head + a + "peers p\n    server p1 10.0.0.2:1024\n",
			`line 9 changed: "server p1 10.0.0.2:1024" (was "server p1 10.0.0.1:1024")`},
		{"static-rr", "backend b\n    balance static-rr\n" + a, "backend b\n    balance static-rr\n" + a + "    server n 10.0.0.2:80\n",
			"backend b (line 1): balance static-rr is static, and HAProxy adds"},
		{"map-based hash", "backend b\n    balance uri\n" + a, "backend b\n    balance uri\n", "balance uri with hash-type map-based is static, and HAProxy adds, removes and reweights servers at runtime only under a dynamic algorithm; hint: 'hash-type consistent' makes it dynamic"},
		{"map-based reweight", "backend b\n    balance hdr(host)\n" + a, "backend b\n    balance hdr(host)\n    server a 10.0.0.1:80 check weight 3\n", "balance hdr(host) with hash-type map-based is static"},
		{"default-server", head + "    default-server inter 3s\n" + a, head + "    default-server inter 3s\n" + a + "    server n 10.0.0.2:80\n",
			"backend b: server n (line 9) would not inherit default-server (line 7) when added at runtime"},
		{"default-server from defaults", "defaults\n    default-server check\n" + head + a, "defaults\n    default-server check\n" + head + a + "    server n 10.0.0.2:80\n",
			"would not inherit default-server (line 2)"},
		{"cookie", head + a, head + a + "    server n 10.0.0.2:80 cookie n\n", `server b/n at line 8: HAProxy 2.6 refuses keyword "cookie"`},
		{"resolvers", head + a, head + a + "    server n 10.0.0.2:80 resolvers dns init-addr none\n", `refuses keyword "resolvers"`},
		{"agent-check", head + a, head + a + "    server n 10.0.0.2:80 agent-check agent-port 9000\n", `keyword "agent-check": its agent check would need`},
		{"track", head + a, head + a + "    server n 10.0.0.2:80 track b/a\n", `keyword "track": a dynamic server cannot track`},
		{"unknown keyword", head + a, head + a + "    server n 10.0.0.2:80 frobnicate\n", `keyword "frobnicate" is not one serf-hb adds at runtime`},
		{"keywords changed", head + a, head + "    server a 10.0.0.1:80 check inter 3s\n", `server b/a at line 7: keywords changed from "check" to "check inter 3s"`},
		{"check dropped", head + a, head + "    server a 10.0.0.1:80\n", `keywords changed from "check" to ""`},
		{"renamed", head + a, head + "    server a2 10.0.0.1:80 check\n", "server b/a renamed to a2 (line 7)"},
		{"hostname added", head + a, head + a + "    server n web.example:80\n", `address "web.example:80" is not IP:PORT`},
		{"no port", head + a, head + a + "    server n 10.0.0.2\n", `address "10.0.0.2" is not IP:PORT`},
		{"readdress to hostname", head + a, head + "    server a web.example:80 check\n", `server b/a at line 7: address "web.example:80" is not IP:PORT`},
		{"duplicate name", head + a, head + a + a, "server b/a defined twice (lines 7 and 8)"},
		{"bad name", head + a, head + a + "    server \"n x\" 10.0.0.2:80\n", "name is not made of"},
		{"argument not for the CLI", head + a, head + a + "    server n 10.0.0.2:80 sni \"str(a;b)\"\n", `"str(a;b)" cannot be sent on the runtime API`},
		{"variable", head + a, head + a + "    server n \"${ADDR}\"\n", `address "${ADDR}" is not IP:PORT`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Diff([]byte(tt.old), []byte(tt.new))
			var nl *NotLiveError
			if !errors.As(err, &nl) {
				t.Fatalf("Diff = %v, %v; want a *NotLiveError", p, err)
			}
			if !strings.Contains(nl.Reason, tt.reason) {
				t.Errorf("reason %q\nlacks %q", nl.Reason, tt.reason)
			}
			if !strings.HasPrefix(err.Error(), "reload needed: ") {
				t.Errorf("error %q does not say a reload is needed", err)
			}
		})
	}
}

// TestDiffWalkMatches: the walk over two name-ordered sections finds what
// the index by name finds, in the same order, for random pairs of
// backends (servers joining, leaving, moving, reweighted, their keywords
// changed), and a section out of order or with a name twice takes the
// index, which refuses the repeated name.
func TestDiffWalkMatches(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 2026))
	// A server's keywords change in one case in twenty: a change
	// refuses the plan, and most cases are to compare plans.
	server := func(name string) string {
		kw := " check"
		if rng.IntN(20) == 0 {
			kw = " check inter 2s"
		}
		return fmt.Sprintf("    server %s 127.0.21.%d:%d weight %d%s\n", name, 1+rng.IntN(3), 80+rng.IntN(2), 1+rng.IntN(2), kw)
	}
	fixed := func(name string) string { return "    server " + name + " 127.0.21.1:80 check\n" }
	section := func(names []string, line func(string) string) *Section {
		var b strings.Builder
		b.WriteString(head)
		for _, n := range names {
			b.WriteString(line(n))
		}
		return Parse([]byte(b.String())).Section("b")
	}
	pick := func() []string {
		var names []string
		for i := range 12 {
			if rng.IntN(2) == 0 {
				names = append(names, fmt.Sprintf("s%02d", i))
			}
		}
		return names
	}
	// same reports whether two outcomes agree: on an error the plan is
	// dropped (Diff returns none), so only the errors compare.
	same := func(a BackendPlan, aerr error, b BackendPlan, berr error) bool {
		if aerr != nil || berr != nil {
			return aerr != nil && berr != nil && aerr.Error() == berr.Error()
		}
		return reflect.DeepEqual(a, b)
	}
	walked, indexed, plans := 0, 0, 0
	for i := range 2000 {
		oldNames, newNames := pick(), pick()
		if i%4 == 0 { // out of order: Diff takes the index
			rng.Shuffle(len(newNames), func(a, b int) { newNames[a], newNames[b] = newNames[b], newNames[a] })
		}
		o, n := section(oldNames, server), section(newNames, server)
		viaIndex := BackendPlan{Backend: "b"}
		merr := matchServers(o, n, &viaIndex)
		if merr == nil {
			merr = checkLive(n, viaIndex)
			plans++
		}
		got, err := diffServers(o, n)
		if !same(got, err, viaIndex, merr) {
			t.Fatalf("case %d: diffServers %+v, %v; index %+v, %v", i, got, err, viaIndex, merr)
		}
		if !ascending(o) || !ascending(n) {
			indexed++
			continue
		}
		walked++
		viaWalk := BackendPlan{Backend: "b"}
		werr := walkServers(o, n, &viaWalk)
		if werr == nil {
			werr = checkLive(n, viaWalk)
		}
		if !same(viaWalk, werr, viaIndex, merr) {
			t.Fatalf("case %d: walk %+v, %v; index %+v, %v", i, viaWalk, werr, viaIndex, merr)
		}
	}
	if walked < 1000 || indexed < 300 || plans < 500 {
		t.Errorf("of 2000 pairs, %d ordered (want 1,000 or more), %d not (want 300 or more), %d with a plan to compare (want 500 or more)", walked, indexed, plans)
	}
	for _, tt := range []struct {
		names []string
		err   string
	}{
		{[]string{"b", "a"}, ""},
		{[]string{"a", "b", "b"}, "server b/b defined twice (lines 8 and 9)"},
		{[]string{"b", "a", "b"}, "server b/b defined twice (lines 7 and 9)"},
	} {
		n := section(tt.names, fixed)
		if ascending(n) {
			t.Errorf("%v: seen as ascending", tt.names)
		}
		_, err := diffServers(section([]string{"a"}, fixed), n)
		if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("%v: Diff error %v, want %q", tt.names, err, tt.err)
		}
	}
}
