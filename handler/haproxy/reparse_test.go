package haproxy

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// TestReparse: whatever two files, reparse either declines or gives what
// parse gives for the new file, field for field (line numbers, others,
// weights, keywords); over random files of several sections and random
// edits of their lines, it takes the short way in most of the edits that
// touch only server lines of a backend without default-server.
func TestReparse(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 12))
	server := func() string {
		line := fmt.Sprintf("server s%03d 127.0.21.%d:%d", rng.IntN(1000), rng.IntN(4), 80+rng.IntN(3))
		for _, kw := range []string{" check", " weight 3", " inter 2s", " # a comment"} {
			if rng.IntN(3) == 0 {
				line += kw
			}
		}
		return []string{"    ", "\t", " "}[rng.IntN(3)] + line
	}
	// Lines of the kind a rendered file has, and some it should not.
	others := []func() string{
		func() string { return "" },
		func() string { return "    # a comment" },
		func() string { return "    balance " + []string{"roundrobin", "source", "leastconn"}[rng.IntN(3)] },
		func() string { return "    default-server weight 5" },
		func() string { return "backend b" + fmt.Sprint(rng.IntN(4)) },
		func() string { return "listen l" },
		func() string { return "defaults" },
		func() string { return "peers p\n    server x 1.1.1.1:1" },
		func() string { return "    server two-words" },
		func() string { return "    timeout server 1s" },
	}
	file := func() []string {
		ls := []string{"global", "    maxconn 100", "defaults", "    timeout connect 1s"}
		for range 1 + rng.IntN(4) {
			ls = append(ls, "backend b"+fmt.Sprint(rng.IntN(6)))
			for range rng.IntN(12) {
				if rng.IntN(8) == 0 {
					ls = append(ls, others[rng.IntN(len(others))]())
				} else {
					ls = append(ls, server())
				}
			}
		}
		return ls
	}
	short, serverOnly := 0, 0
	for i := range 5000 {
		prev := file()
		next := append([]string(nil), prev...)
		onlyServers := true
		for range 1 + rng.IntN(3) {
			at := rng.IntN(len(next) + 1)
			var l string
			if rng.IntN(4) == 0 {
				l, onlyServers = others[rng.IntN(len(others))](), false
			} else {
				l = server()
			}
			switch rng.IntN(3) {
			case 0: // insert
				next = append(next[:at], append([]string{l}, next[at:]...)...)
			case 1: // remove
				if at < len(next) {
					onlyServers = onlyServers && strings.HasPrefix(strings.TrimSpace(next[at]), "server s")
					next = append(next[:at], next[at+1:]...)
				}
			default: // replace
				if at < len(next) {
					onlyServers = onlyServers && strings.HasPrefix(strings.TrimSpace(next[at]), "server s")
					next[at] = l
				}
			}
		}
		end := []string{"\n", "", "\r\n"}[rng.IntN(3)]
		ps, ns := strings.Join(prev, "\n")+end, strings.Join(next, "\n")+end
		got, ok := reparse(ps, parse(ps), ns)
		if ok {
			short++
			if want := parse(ns); !reflect.DeepEqual(got, want) {
				t.Fatalf("case %d: reparse differs from parse\nprev:\n%s\nnext:\n%s\ngot  %+v\nwant %+v", i, ps, ns, got, want)
			}
		}
		if onlyServers {
			serverOnly++
		}
	}
	// Files of thousands of lines, where the shared head and tail are
	// compared a chunk at a time: an edit anywhere, including a chunk's
	// edge.
	big := file()
	for range 3000 {
		big = append(big, server())
	}
	bigSrc := strings.Join(big, "\n") + "\n"
	bigConf := parse(bigSrc)
	for i := range 200 {
		next := append([]string(nil), big...)
		at := 4 + rng.IntN(len(next)-4)
		if i%2 == 0 { // the line that holds the byte at a chunk's edge
			at = strings.Count(bigSrc[:4096*(1+rng.IntN(len(bigSrc)/4096))], "\n")
		}
		switch i % 3 {
		case 0:
			next = append(next[:at], append([]string{server()}, next[at:]...)...)
		case 1:
			next = append(next[:at], next[at+1:]...)
		default:
			next[at] = server()
		}
		ns := strings.Join(next, "\n") + "\n"
		got, ok := reparse(bigSrc, bigConf, ns)
		if want := parse(ns); ok && !reflect.DeepEqual(got, want) {
			t.Fatalf("big case %d: reparse differs from parse at line %d", i, at+1)
		}
	}
	if short < serverOnly/2 {
		t.Errorf("reparse took the short way in %d of 5,000 edits, %d of which touched server lines only: want at least half of those", short, serverOnly)
	}
	t.Logf("reparse took the short way in %d of 5,000 edits (%d touched server lines only)", short, serverOnly)
}

// FuzzReparse: reparse declines, or agrees with parse.
func FuzzReparse(f *testing.F) {
	seeds := cfgSeeds(f)
	for i, s := range seeds {
		f.Add(s, seeds[(i+1)%len(seeds)])
		f.Add(s, append(s[:len(s):len(s)], "    server n 10.0.0.9:80 check\n"...))
	}
	f.Fuzz(func(t *testing.T, prev, next []byte) {
		if c, ok := reparse(string(prev), parse(string(prev)), string(next)); ok {
			if want := parse(string(next)); !reflect.DeepEqual(c, want) {
				t.Fatalf("reparse differs from parse\ngot  %+v\nwant %+v", c, want)
			}
		}
	})
}
