package handler

import (
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/serf-hb/serf-hb/handler/serfevent"
	"github.com/serf-hb/serf-hb/nodestore"

	"github.com/serf-hb/serf-hb/handler/serfrpc"
)

// TestDecideEvent: an event's lines in, the changes they call for out.
func TestDecideEvent(t *testing.T) {
	ip := netip.MustParseAddr("127.0.0.9")
	m := func(line int, name, role string) serfevent.Member {
		return serfevent.Member{Line: line, Name: name, Addr: ip, Role: role, Tags: map[string]string{"role": role}}
	}
	bad := m(9, "w-bad", "backend")
	bad.Addr, bad.BadAddr = netip.Addr{}, "garbage"
	lines := []serfevent.Member{m(1, "lb", "backend"), m(2, "w1", "backend"), m(3, "db", "db"), m(4, "../x", "backend"),
		m(5, "../y", "db"), m(6, "W", "Backend"), bad}
	alive := func(s string) bool { return s == serfrpc.StatusAlive }
	withFailed := func(s string) bool { return s != serfrpc.StatusLeft }
	for _, tt := range []struct {
		ev       string
		roles    []string
		statuses func(string) bool
		add      []string
		remove   []string
		ignored  []string
		rejected []int // lines
		warnings int
	}{
		{"member-join", []string{"backend"}, alive, []string{"w1"}, nil, []string{"lb", "db", "../y", "W"}, []int{4, 9}, 1},
		{"member-update", []string{"backend"}, alive, []string{"w1"}, []string{"db", "W"}, []string{"lb", "../y"}, []int{4, 9}, 1},
		{"member-leave", []string{"backend"}, alive, nil, []string{"w1", "db", "W", "w-bad"}, []string{"lb", "../y"}, []int{4}, 0},
		{"member-failed", []string{"backend"}, withFailed, nil, []string{"db", "W"}, []string{"lb", "w1", "../y", "w-bad"}, []int{4}, 0},
		{"member-reap", []string{"backend"}, withFailed, nil, []string{"w1", "db", "W", "w-bad"}, []string{"lb", "../y"}, []int{4}, 0},
		{"member-join", []string{"backend", "db"}, alive, []string{"w1", "db"}, nil, []string{"lb", "W"}, []int{4, 5, 9}, 1},
		{"member-join", []string{"*"}, alive, []string{"w1", "db", "W"}, nil, []string{"lb"}, []int{4, 5, 9}, 0},
	} {
		t.Run(tt.ev+"/"+strings.Join(tt.roles, ","), func(t *testing.T) {
			d := decideEvent(tt.ev, lines, policy{roles: tt.roles, self: "lb", statuses: tt.statuses})
			var rejected []int
			var addNames []string
			for _, n := range d.want.add {
				addNames = append(addNames, n.Name)
			}
			for _, r := range d.rejected {
				rejected = append(rejected, r.Line)
			}
			if !reflect.DeepEqual(addNames, tt.add) || !reflect.DeepEqual(d.want.remove, tt.remove) ||
				!reflect.DeepEqual(d.ignored, tt.ignored) || !reflect.DeepEqual(rejected, tt.rejected) || len(d.warnings) != tt.warnings {
				t.Errorf("got add %v remove %v ignored %v rejected lines %v warnings %q\nwant add %v remove %v ignored %v rejected lines %v, %d warnings",
					addNames, d.want.remove, d.ignored, rejected, d.warnings, tt.add, tt.remove, tt.ignored, tt.rejected, tt.warnings)
			}
		})
	}
}

func TestBadPort(t *testing.T) {
	for v, bad := range map[string]bool{"3000": false, "1": false, "65535": false, "0": true, "65536": true,
		"99999": true, "80 backup": true, "080": true, "+80": true, "": true} {
		if got := badPort("w", map[string]string{"port": v}) != ""; got != bad {
			t.Errorf("port %q: warned %v, want %v", v, got, bad)
		}
	}
	if badPort("w", map[string]string{}) != "" {
		t.Error("no port tag warned")
	}
}

// ahead: the members a join registers anew, each as its last line gives
// it, and none when more than maxAhead would go ahead of the file.
func TestAhead(t *testing.T) {
	n := func(name, addr string) nodestore.Node {
		return nodestore.Node{Name: name, Addr: netip.MustParseAddr(addr), Role: "backend"}
	}
	added, updated, same, refused := nodestore.PutResult{Changed: true}, nodestore.PutResult{Changed: true, Existed: true},
		nodestore.PutResult{Existed: true}, nodestore.PutResult{Err: errors.New("refused")}
	got := ahead([]nodestore.Node{n("a", "127.0.0.1"), n("b", "127.0.0.2"), n("a", "127.0.0.3"), n("c", "127.0.0.4"), n("d", "127.0.0.5")},
		[]nodestore.PutResult{added, updated, updated, same, refused})
	if len(got) != 1 || got[0].Name != "a" || got[0].Addr.String() != "127.0.0.3" {
		t.Errorf("ahead = %v, want a at its last line's 127.0.0.3", got)
	}
	var puts []nodestore.Node
	var res []nodestore.PutResult
	for i := range maxAhead + 1 {
		puts, res = append(puts, n(fmt.Sprintf("w%d", i), "127.0.0.1")), append(res, added)
		want := len(puts)
		if want > maxAhead {
			want = 0 // a batch takes the ordinary way
		}
		if got := ahead(puts, res); len(got) != want {
			t.Errorf("%d new members: ahead gives %d, want %d", len(puts), len(got), want)
		}
	}
}
