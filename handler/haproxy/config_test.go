package haproxy

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func TestParseSections(t *testing.T) {
	cfg := `# a comment before anything
global
    maxconn 10   # trailing comment

defaults
    mode http
    balance leastconn
    hash-type consistent

frontend fe
    bind :80
backend b
    balance source
    server a 127.0.0.1:80 check weight 3 inter 2s
	server	b	[::1]:81	backup
listen l
    hash-type map-based
    server c 127.0.0.3:82
peers p
    server p1 127.0.0.4:1024
`
	c := Parse([]byte(cfg))
	var kinds []string
	for _, s := range c.Sections {
		kinds = append(kinds, s.Kind+":"+s.Name)
	}
	if want := []string{"global:", "defaults:", "frontend:fe", "backend:b", "listen:l", "peers:p"}; !reflect.DeepEqual(kinds, want) {
		t.Fatalf("sections %v, want %v", kinds, want)
	}
	b := c.Section("b")
	if b.Balance != "source" || b.HashType != "consistent" || b.Line != 12 {
		t.Errorf("backend b: balance %q hash-type %q line %d; want source, consistent (from defaults), 12", b.Balance, b.HashType, b.Line)
	}
	want := []Server{
		{Name: "a", Address: "127.0.0.1:80", IP: netip.MustParseAddr("127.0.0.1"), Port: 80, Weight: 3, Check: true, Keywords: []string{"inter", "2s"}, Line: 14},
		{Name: "b", Address: "[::1]:81", IP: netip.MustParseAddr("::1"), Port: 81, Weight: 1, Keywords: []string{"backup"}, Line: 15},
	}
	if !reflect.DeepEqual(b.Servers, want) {
		t.Errorf("servers of b:\n got %+v\nwant %+v", b.Servers, want)
	}
	if l := c.Section("l"); l.Balance != "leastconn" || l.HashType != "map-based" || len(l.Servers) != 1 {
		t.Errorf("listen l: %q %q %d servers; want leastconn, its own map-based, 1 server", l.Balance, l.HashType, len(l.Servers))
	}
	if c.Section("p") != nil || c.Section("fe") != nil {
		t.Error("Section found a peers or frontend section; it looks up backends and listens only")
	}
	if s, ok := c.Server("b", "b"); !ok || !reflect.DeepEqual(s, want[1]) {
		t.Errorf("Server(b, b) = %+v, %v; want %+v", s, ok, want[1])
	}
	for _, bs := range [][2]string{{"b", "c"}, {"l", "a"}, {"p", "p1"}, {"nope", "a"}} {
		if s, ok := c.Server(bs[0], bs[1]); ok {
			t.Errorf("Server(%s, %s) = %+v; want none", bs[0], bs[1], s)
		}
	}
	peers := c.Sections[5]
	if len(peers.Servers) != 0 || len(peers.others) != 2 || peers.others[1].Text != "server p1 127.0.0.4:1024" {
		t.Errorf("peers section: servers %v others %v; a peers server line is another line", peers.Servers, peers.others)
	}
	if g := c.Sections[0].others; len(g) != 2 || g[1] != (line{3, "maxconn 10"}) {
		t.Errorf("global lines %v: comments and spacing must not count", g)
	}
}

func TestParseInheritance(t *testing.T) {
	tests := []struct {
		name, cfg, backend string
		balance, hash      string
		defaultServer      int
	}{
		{"nothing set", "backend b\n", "b", "roundrobin", "map-based", 0},
		{"last defaults", "defaults\n balance first\ndefaults\n balance uri\nbackend b\n", "b", "uri", "map-based", 0},
		{"defaults starts afresh", "defaults\n hash-type consistent\ndefaults\n balance uri\nbackend b\n", "b", "uri", "map-based", 0},
		{"named with from", "defaults d1\n balance source\n hash-type consistent\ndefaults\n balance static-rr\nbackend b from d1\n", "b", "source", "consistent", 0},
		{"defaults from defaults", "defaults d1\n hash-type consistent\ndefaults d2 from d1\n balance uri\nbackend b from d2\n", "b", "uri", "consistent", 0},
		{"own overrides", "defaults\n balance first\nbackend b\n balance leastconn\n", "b", "leastconn", "map-based", 0},
		{"default-server inherited", "defaults\n default-server inter 3s\nbackend b\n", "b", "roundrobin", "map-based", 2},
		{"default-server own", "backend b\n default-server inter 3s\n", "b", "roundrobin", "map-based", 2},
		{"listen", "defaults\n balance first\nlisten b\n bind :80\n", "b", "first", "map-based", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Parse([]byte(tt.cfg)).Section(tt.backend)
			if s == nil {
				t.Fatalf("no section %s", tt.backend)
			}
			if s.Balance != tt.balance || s.HashType != tt.hash || s.DefaultServer != tt.defaultServer {
				t.Errorf("balance %q hash-type %q default-server line %d; want %q %q %d",
					s.Balance, s.HashType, s.DefaultServer, tt.balance, tt.hash, tt.defaultServer)
			}
		})
	}
}

func TestParseDefaultServerWeight(t *testing.T) {
	cfg := "defaults\n default-server inter 2s weight 5\nbackend b\n server a 10.0.0.1:80\n server b 10.0.0.2:80 weight 2\n" +
		"backend c\n default-server weight 0\n server a 10.0.0.1:80\n" +
		"defaults\nbackend d\n server a 10.0.0.1:80\n"
	c := Parse([]byte(cfg))
	for _, tt := range []struct {
		backend string
		weights []int
	}{{"b", []int{5, 2}}, {"c", []int{0}}, {"d", []int{1}}} {
		var got []int
		for _, s := range c.Section(tt.backend).Servers {
			got = append(got, s.Weight)
		}
		if !reflect.DeepEqual(got, tt.weights) {
			t.Errorf("backend %s: weights %v, want %v", tt.backend, got, tt.weights)
		}
	}
}

func TestParseServerLine(t *testing.T) {
	tests := []struct {
		line     string
		ip       string // "" when not a literal IP:PORT
		port     int
		weight   int
		check    bool
		keywords []string
	}{
		{"server a 127.0.0.1:80", "127.0.0.1", 80, 1, false, nil},
		{"server a ::1:3000 check", "::1", 3000, 1, true, nil},
		{"server a [2001:db8::1]:443 weight 0", "2001:db8::1", 443, 0, false, nil},
		{"server a ::ffff:10.0.0.1:80", "10.0.0.1", 80, 1, false, nil},
		{"server a web.example:80", "", 0, 1, false, nil},
		{"server a 127.0.0.1", "", 0, 1, false, nil},
		{"server a 127.0.0.1:+1", "", 0, 1, false, nil},
		{"server a 127.0.0.1:8000-8010", "", 0, 1, false, nil},
		{"server a ipv4@127.0.0.1:80", "", 0, 1, false, nil},
		{"server a 127.0.0.1:0", "", 0, 1, false, nil},
		{"server a 127.0.0.1:65536", "", 0, 1, false, nil},
		{"server a fe80::1%eth0:80", "", 0, 1, false, nil},
		{"server a 127.0.0.1:80 weight x", "127.0.0.1", 80, 1, false, []string{"weight", "x"}},
		// check as the argument of another keyword is not the check flag.
		{"server a 127.0.0.1:80 agent-send check", "127.0.0.1", 80, 1, false, []string{"agent-send", "check"}},
		{"server a 127.0.0.1:80 sni \"str(a b)\" check", "127.0.0.1", 80, 1, true, []string{"sni", "str(a b)"}},
		{"server a 127.0.0.1:80 source 10.0.0.1 usesrc clientip check", "127.0.0.1", 80, 1, true, []string{"source", "10.0.0.1", "usesrc", "clientip"}},
		{"server a 127.0.0.1:80 check#comment", "127.0.0.1", 80, 1, true, nil},
		{"server a 127.0.0.1:80 redir 'http://x/#y'", "127.0.0.1", 80, 1, false, []string{"redir", "http://x/#y"}},
		{"server a 127.0.0.1:80 agent-send a\\ b", "127.0.0.1", 80, 1, false, []string{"agent-send", "a b"}},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			c := Parse([]byte("backend b\n" + tt.line + "\n"))
			if len(c.Sections[0].Servers) != 1 {
				t.Fatalf("servers %v, want one", c.Sections[0].Servers)
			}
			s := c.Sections[0].Servers[0]
			var ip netip.Addr
			if tt.ip != "" {
				ip = netip.MustParseAddr(tt.ip)
			}
			if s.IP != ip || s.Port != tt.port || s.Weight != tt.weight || s.Check != tt.check || !reflect.DeepEqual(s.Keywords, tt.keywords) {
				t.Errorf("got ip %v port %d weight %d check %v keywords %q; want %v %d %d %v %q",
					s.IP, s.Port, s.Weight, s.Check, s.Keywords, ip, tt.port, tt.weight, tt.check, tt.keywords)
			}
		})
	}
}

func TestParseLineEndings(t *testing.T) {
	for name, cfg := range map[string]string{
		"crlf":            "backend b\r\n    server a 127.0.0.1:80\r\n",
		"no final LF":     "backend b\n    server a 127.0.0.1:80",
		"blank and tabs":  "\n\n backend b\n\n\t\tserver a 127.0.0.1:80\n\n",
		"comment between": "backend b\n# server x 127.0.0.1:1\n    server a 127.0.0.1:80\n",
	} {
		t.Run(name, func(t *testing.T) {
			s := Parse([]byte(cfg)).Section("b")
			if s == nil || len(s.Servers) != 1 || s.Servers[0].Name != "a" || s.Servers[0].Port != 80 {
				t.Fatalf("section b = %+v, want one server a on port 80", s)
			}
			if want := strings.Count(cfg[:strings.Index(cfg, "server a")], "\n") + 1; s.Servers[0].Line != want {
				t.Errorf("server a at line %d, want %d", s.Servers[0].Line, want)
			}
		})
	}
}

func TestKeywordSpans(t *testing.T) {
	got := keywordSpans(strings.Fields("inter 2s backup source 1.2.3.4 usesrc client interface eth0 frob rise"))
	want := [][]string{{"inter", "2s"}, {"backup"}, {"source", "1.2.3.4", "usesrc", "client", "interface", "eth0"}, {"frob"}, {"rise"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("keywordSpans = %q, want %q", got, want)
	}
}

// TestParseConcurrent: a file parsed ahead in a goroutine and parsed again
// meanwhile is parsed once, and both get the same result.
func TestParseConcurrent(t *testing.T) {
	cfg := []byte(head + "    server a 10.0.0.1:80 check\n    server bb 10.0.0.2:80 weight 3\n")
	results := make(chan *Config, 8)
	for range 8 {
		go func() { results <- Parse(cfg) }()
	}
	first := <-results
	for range 7 {
		if c := <-results; c != first {
			t.Fatalf("two results for one file: %p and %p", first, c)
		}
	}
	if s := first.Section("b"); s == nil || len(s.Servers) != 2 || s.Servers[1].Weight != 3 || !s.Servers[0].Check {
		t.Fatalf("parsed %+v", first)
	}
}
