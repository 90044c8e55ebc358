package haproxy

// Fuzz targets for the parsers of outside input: the rendered haproxy.cfg
// (Parse, Diff) and HAProxy's replies (show servers state, show stat).
// Seeds: the golden render of ../../render and the f.Add calls below;
// scripts/fuzz.sh runs every target for a bounded time.

import (
	"bytes"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
)

func cfgSeeds(f *testing.F) [][]byte {
	golden, err := os.ReadFile("../../render/testdata/default.golden")
	if err != nil {
		f.Fatal(err)
	}
	return [][]byte{
		golden,
		[]byte(head + "    server a 10.0.0.1:80 check weight 2 inter 2s\n"),
		[]byte("defaults d\n balance source\n hash-type consistent\n default-server check\nbackend b from d\n server a [::1]:80 sni \"str(a b)\" # c\n"),
		[]byte("listen l\r\n\tserver a 1.2.3.4:5 source 1.1.1.1 usesrc clientip\r\npeers p\n server x 1.1.1.1:1\n"),
		[]byte("backend b\n server a 'x\\'y' \\#z\n server\n server a\n server a b c\n"),
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range cfgSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, cfg []byte) {
		c := Parse(cfg)
		nlines := bytes.Count(cfg, []byte("\n")) + 1
		for _, s := range c.Sections {
			if s.Balance == "" || s.HashType == "" {
				t.Fatalf("section %s %s: empty balance or hash-type", s.Kind, s.Name)
			}
			for _, srv := range s.Servers {
				if srv.Name == "" && !bytes.Contains(cfg, []byte(`""`)) && !bytes.Contains(cfg, []byte(`''`)) {
					t.Fatalf("server with an empty name from %q", cfg)
				}
				if srv.Line < 1 || srv.Line > nlines {
					t.Fatalf("server %s at line %d of %d", srv.Name, srv.Line, nlines)
				}
				if srv.IP.IsValid() != (srv.Port != 0) {
					t.Fatalf("server %s: IP %v with port %d", srv.Name, srv.IP, srv.Port)
				}
			}
		}
		sameNames(t, string(cfg))
	})
}

// sameNames fails t unless parseNames reads cfg as parse does, but for the
// server lines, of which it keeps the name and line number.
func sameNames(t *testing.T, cfg string) {
	t.Helper()
	want := parse(cfg)
	for i := range want.Sections {
		s := &want.Sections[i]
		for j, srv := range s.Servers {
			s.Servers[j] = Server{Name: srv.Name, Line: srv.Line}
		}
	}
	if got := parseNames(cfg); !reflect.DeepEqual(got, want) {
		t.Fatalf("parseNames differs from parse:\n got %+v\nwant %+v\nfrom %q", got, want, cfg)
	}
}

// FuzzDiff checks that a file compared with itself needs nothing, and
// that a file and its copy with one more server line either give a plan
// adding exactly that server or a reason to reload.
func FuzzDiff(f *testing.F) {
	for _, s := range cfgSeeds(f) {
		f.Add(s, "n 10.0.0.9:80 check")
	}
	f.Fuzz(func(t *testing.T, cfg []byte, line string) {
		p, err := Diff(cfg, cfg)
		if err != nil || len(p) != 0 {
			t.Fatalf("Diff(x, x) = %v, %v; want an empty plan", p, err)
		}
		if strings.ContainsAny(line, "\r\n") {
			return
		}
		more := append(append(bytes.Clone(cfg), "\nbackend fuzz\n server "...), line...)
		base := append(bytes.Clone(cfg), "\nbackend fuzz\n"...)
		p, err = Diff(base, more)
		var nl *NotLiveError
		if err != nil && !errors.As(err, &nl) {
			t.Fatalf("Diff error %v is not a *NotLiveError", err)
		}
		if err == nil && len(p) > 1 {
			t.Fatalf("one server line more gave plan %+v", p)
		}
		if err == nil && len(p) == 1 {
			if len(p[0].Add) != 1 || len(p[0].Remove)+len(p[0].Readdress)+len(p[0].Reweight) != 0 {
				t.Fatalf("one server line more gave plan %+v", p)
			}
			for _, w := range strings.Fields(p[0].Backend + " " + p[0].Add[0].Name + " " + strings.Join(p[0].Add[0].Keywords, " ")) {
				if !cliSafe(w) {
					t.Fatalf("plan would send %q on the runtime API", w)
				}
			}
		}
	})
}

func FuzzParseServersState(f *testing.F) {
	f.Add(stateReply)
	f.Add("1\n# be_name srv_id srv_name srv_addr srv_admin_state srv_uweight srv_port\nb 1 a - 1 1 0")
	f.Add("Can't find backend.")
	f.Fuzz(func(t *testing.T, reply string) {
		servers, err := parseServersState(reply)
		if err != nil {
			return
		}
		for _, s := range servers {
			if s.Backend == "" || s.Name == "" {
				t.Fatalf("server with empty backend or name %+v from %q", s, reply)
			}
		}
	})
}

// FuzzAdds checks what Adds may send ahead of the whole file, whatever the
// two files: only servers new to a backend the installed file has, with
// that backend's algorithm, that HAProxy can take at runtime as written;
// and that Settle takes a plan's own adds out of it, and refuses a plan
// without them.
func FuzzAdds(f *testing.F) {
	for _, s := range cfgSeeds(f) {
		f.Add(s, []byte(head+"    server n 10.0.0.9:80 check\n"))
		f.Add(s, s)
	}
	f.Fuzz(func(t *testing.T, installed, partial []byte) {
		claimed := func(s Server) bool { return s.IP.IsValid() }
		p := Adds(installed, partial, claimed)
		o := Parse(installed)
		for _, b := range p {
			os := o.Section(b.Backend)
			if os == nil {
				t.Fatalf("adds to backend %s, which the installed file lacks", b.Backend)
			}
			if len(b.Add) == 0 || len(b.Remove)+len(b.Readdress)+len(b.Reweight) > 0 {
				t.Fatalf("plan %+v: want adds only", b)
			}
			for _, s := range b.Add {
				for _, x := range os.Servers {
					if x.Name == s.Name {
						t.Fatalf("adds %s/%s, which the installed file has (line %d)", b.Backend, s.Name, x.Line)
					}
				}
				if err := checkLive(os, BackendPlan{Backend: b.Backend, Add: []Server{s}}); err != nil || !claimed(s) {
					t.Fatalf("adds %s/%s: %v", b.Backend, s.Name, err)
				}
			}
		}
		if len(p) == 0 {
			return
		}
		if rest, err := Settle(p, p); err != nil || len(rest) != 0 {
			t.Fatalf("Settle(p, p) = %v, %v; want nothing left", rest, err)
		}
		var nl *NotLiveError
		if _, err := Settle(nil, p); !errors.As(err, &nl) {
			t.Fatalf("Settle(nil, p) = %v; want a *NotLiveError", err)
		}
	})
}
