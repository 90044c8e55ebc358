package haproxy

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

// joiner claims the servers at 10.0.0.9, the joining member's address.
func joiner(s Server) bool { return s.IP == netip.MustParseAddr("10.0.0.9") }

func TestAdds(t *testing.T) {
	a := "    server a 10.0.0.1:80 check\n"
	n := "    server n 10.0.0.9:80 check\n"
	tests := []struct {
		name               string
		installed, partial string
		want               map[string][]string
	}{
		{"a new server", head + a, head + n, map[string][]string{"b add": {"n"}}},
		{"in two backends", head + a + "backend c\n", head + n + "backend c\n    server n2 10.0.0.9:81\n",
			map[string][]string{"b add": {"n"}, "c add": {"n2"}}},
		{"listen", "listen l\n    bind :80\n" + a, "listen l\n    bind :80\n" + n, map[string][]string{"l add": {"n"}}},
		{"other lines may differ", head + a, "# 1 member\n" + head + "    option httpchk\n" + n, map[string][]string{"b add": {"n"}}},
		// Not the joining member's: a fixed server of the template, or a
		// member already registered.
		{"another address", head + a, head + n + "    server fallback 10.0.0.8:80\n", map[string][]string{"b add": {"n"}}},
		// A name the backend has is a server the whole file redefines or
		// renames (names counted by a loop): Diff decides.
		{"name taken", head + "    server n 10.0.0.1:80 check\n", head + n, map[string][]string{}},
		{"twice in the partial file", head + a, head + n + "    server n 10.0.0.9:81\n", map[string][]string{"b add": {"n"}}},
		{"backend the installed file lacks", head + a, head + a + "backend c\n" + n, map[string][]string{}},
		{"backend is a frontend there", head + a + "frontend c\n", head + a + "backend c\n" + n, map[string][]string{}},
		{"other balance", head + a, strings.Replace(head, "roundrobin", "leastconn", 1) + n, map[string][]string{}},
		{"static balance", strings.Replace(head, "roundrobin", "static-rr", 1) + a, strings.Replace(head, "roundrobin", "static-rr", 1) + n, map[string][]string{}},
		{"default-server installed", head + "    default-server inter 3s\n" + a, head + n, map[string][]string{}},
		{"default-server rendered", head + a, head + "    default-server inter 3s\n" + n, map[string][]string{}},
		{"keyword the runtime API refuses", head + a, head + "    server n 10.0.0.9:80 cookie n\n", map[string][]string{}},
		{"name not sendable", head + a, head + "    server n;x 10.0.0.9:80\n", map[string][]string{}},
		{"hostname", head + a, head + "    server n web.example:80\n", map[string][]string{}},
		{"nothing installed", "", head + n, map[string][]string{}},
		{"a backend twice in the partial file", head + a, head + n + "backend b\n    server m 10.0.0.9:81\n", map[string][]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Adds([]byte(tt.installed), []byte(tt.partial), joiner)
			if got := names(p); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("plan %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSettle(t *testing.T) {
	a := "    server a 10.0.0.1:80 check\n"
	n := "    server n 10.0.0.9:80 check\n"
	early := Adds([]byte(head+a), []byte(head+n), joiner)
	if len(early) != 1 {
		t.Fatalf("Adds: %v, want n", names(early))
	}
	tests := []struct {
		name, whole string
		want        map[string][]string
		notLive     string
	}{
		{"as sent", head + a + n, map[string][]string{}, ""},
		{"and more", head + n + "    server m 10.0.0.7:80\n", map[string][]string{"b add": {"m"}, "b remove": {"a"}}, ""},
		{"another weight", head + a + "    server n 10.0.0.9:80 check weight 3\n", nil, "server b/n was added ahead of the whole file, which does not define it so (line 8: 10.0.0.9:80 check)"},
		{"other keywords", head + a + "    server n 10.0.0.9:80 check inter 2s\n", nil, "which does not define it so (line 8: 10.0.0.9:80 check inter 2s)"},
		{"not defined", head + a, nil, "which does not define it so (it does not add it)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan, err := Diff([]byte(head+a), []byte(tt.whole))
			if err != nil {
				t.Fatal(err)
			}
			before := names(plan)
			rest, err := Settle(plan, early)
			var nl *NotLiveError
			switch {
			case tt.notLive != "":
				if !errors.As(err, &nl) || !strings.Contains(err.Error(), tt.notLive) {
					t.Fatalf("Settle: %v, want a *NotLiveError saying %q", err, tt.notLive)
				}
			case err != nil:
				t.Fatalf("Settle: %v", err)
			default:
				if got := names(rest); !reflect.DeepEqual(got, tt.want) {
					t.Errorf("left %v, want %v", got, tt.want)
				}
			}
			if !reflect.DeepEqual(names(plan), before) {
				t.Errorf("Settle changed its argument: %v, was %v", names(plan), before)
			}
		})
	}
}

func TestPlanUndo(t *testing.T) {
	p := Plan{{Backend: "b", Add: []Server{{Name: "n"}}, Reweight: []Server{{Name: "a"}}}, {Backend: "c", Remove: []Server{{Name: "x"}}}}
	if got, want := names(p.Undo()), map[string][]string{"b remove": {"n"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("Undo: %v, want %v", got, want)
	}
}
