package haproxy

// The client against sockets that misbehave: fakes, in addition to the
// real HAProxy of live_test.go.

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/serf-hb/serf-hb/internal/haproxytest"
)

func TestCommandSocketErrors(t *testing.T) {
	t.Parallel()
	dir := haproxytest.ShortDir(t)
	refused := haproxytest.Refusing(t, filepath.Join(dir, "refused.sock"))
	silent := haproxytest.Silent(t, "unix", filepath.Join(haproxytest.ShortDir(t), "silent.sock"))

	tests := []struct {
		name   string
		client Client
		cmd    string
		want   []string
	}{
		{"missing socket", Client{Addr: filepath.Join(dir, "none.sock")}, "show info",
			[]string{"haproxy " + filepath.Join(dir, "none.sock") + ": show info: ", "no such file or directory",
				"hint: add 'stats socket " + filepath.Join(dir, "none.sock") + " mode 600 level admin' to the global section"}},
		{"nobody listening", Client{Addr: refused}, "show info", []string{"connection refused", "hint: is HAProxy running"}},
		{"never answers", Client{Addr: silent, Timeout: 100 * time.Millisecond}, "show servers state",
			[]string{"haproxy " + silent + ": show servers state: no complete answer in time (timeout 100ms)"}},
		{"TCP, nobody listening", Client{Addr: "127.0.21.1:1"}, "show info", []string{"127.0.21.1:1: show info: ", "connection refused"}},
		{"two commands", Client{Addr: silent}, "show info; show stat", []string{"empty, or more than one command"}},
		{"newline", Client{Addr: silent}, "show info\nshow stat", []string{"empty, or more than one command"}},
		{"empty", Client{Addr: silent}, " ", []string{"empty, or more than one command"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			_, err := tt.client.Command(context.Background(), tt.cmd)
			for _, w := range tt.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("Command = %v; want an error with %q", err, w)
				}
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("Command took %v: it must be bounded by the timeout", d)
			}
		})
	}
}

func TestCommandCancelled(t *testing.T) {
	t.Parallel()
	silent := haproxytest.Silent(t, "unix", filepath.Join(haproxytest.ShortDir(t), "silent.sock"))
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err := Client{Addr: silent, Timeout: time.Minute}.Command(ctx, "show info")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Command after cancel = %v; want context.Canceled", err)
	}
}

// TestSuccessReplies pins the replies meaning success as 2.6.12 gives
// them (captured from a live 2.6.12, see live_test.go).
func TestSuccessReplies(t *testing.T) {
	tests := []struct {
		cmd, reply string
		ok         bool
	}{
		{"add server b/n 127.0.0.1:80", "New server registered.", true},
		{"add server b/n 127.0.0.1:80", "Backend must use a dynamic load balancing to support dynamic servers.", false},
		{"add server b/n 127.0.0.1:80 cookie x", "'cookie' option is not accepted for dynamic server", false},
		{"add server b/n 127.0.0.1:80", "Already exists a server with the same name in backend.", false},
		{"del server b/n", "Server deleted.", true},
		{"del server b/n", "Only servers in maintenance mode can be deleted.", false},
		{"del server b/n", "Server still has connections attached to it, cannot remove it.", false},
		{"set server b/n addr 127.0.0.2 port 81", "IP changed from '127.0.0.1' to '127.0.0.2', port changed from '80' to '81' by 'stats socket command'", true},
		{"set server b/n addr 127.0.0.2 port 81", "no need to change the addr, port changed from '80' to '81' by 'stats socket command'", true},
		{"set server b/n addr 127.0.0.2 port 81", "no need to change the addr, no need to change the port by 'stats socket command'", true},
		{"set server b/n addr 127.0.0.2 port 81", "nothing changed", true}, // 3.0.11, same address and port
		{"set server b/n addr x.example port 81", "Invalid addr 'x.example' by 'stats socket command'", false},
		{"set server b/n state ready", "", true},
		{"set server b/n state ready", "No such server.", false},
		{"set weight b/n 3", "", true},
		{"set weight b/n 3", "Backend is using a static LB algorithm and only accepts weights '0%' and '100%'.", false},
		{"enable health b/n", "", true},
		{"enable health b/n", "Health check was not configured on this server, cannot enable.", false},
		{"shutdown sessions server b/n", "", true},
		{"show servers state b", "1\n# be_id be_name srv_id", true},
		{"show servers state nob", "Can't find backend.", false},
		{"show stat b 4 2", "# pxname,svname,qcur", true},
		{"show stat nob 4 2", "No such proxy.", false},
		{"show info", "Name: HAProxy", true},
		{"show info", "Permission denied", false},
		{"frob", "Unknown command, but maybe one of the following ones is a better match:\n  help", false},
	}
	for _, tt := range tests {
		if got := success(tt.cmd, tt.reply); got != tt.ok {
			t.Errorf("success(%q, %q) = %v, want %v", tt.cmd, tt.reply, got, tt.ok)
		}
	}
}

func TestAppliedString(t *testing.T) {
	for _, tt := range []struct {
		a    Applied
		want string
	}{
		{Applied{}, "no change"},
		{Applied{Added: []string{"b/x", "b/y"}, Retired: []string{"b/z"}}, "added 2 (b/x b/y), retired 1 (b/z)"},
		{Applied{Readdressed: []string{"b/x"}, Reweighted: []string{"b/y"}, Removed: []string{"c/z"}}, "readdressed 1 (b/x), reweighted 1 (b/y), removed 1 (c/z)"},
	} {
		if got := tt.a.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}

// TestVerifyLateAddress: HAProxy 3.0 answers `set server addr` before a
// task applies it, so the first `show servers state` after it may still
// show the old address. Verify reads that backend again, a bounded number
// of times, and passes once the address shows; an address that never
// changes is still a mismatch, reported after the bounded wait; and a
// difference a late address cannot explain is final at the first read.
func TestVerifyLateAddress(t *testing.T) {
	t.Parallel()
	header := "1\n# be_id be_name srv_id srv_name srv_addr srv_admin_state srv_uweight srv_port\n"
	tests := []struct {
		name   string
		weight string // s1's weight in the file
		stale  int    // reads that still show the old address
		reads  int    // reads Verify makes
		err    string
	}{
		{"applied at once", "1", 0, 1, ""},
		{"applied after three reads", "1", 3, 4, ""},
		{"never applied", "1", 100, 8, "b/s1: running at 127.0.21.2 port 9000, the file (line 2) says 127.0.21.3:9000"},
		{"a weight differs too", "2", 100, 1, "b/s1: running with weight 1, the file (line 2) says 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var reads atomic.Int32
			addr := serve(t, func(cmd string) string {
				if cmd != "show servers state b" {
					return "Unknown command."
				}
				ip := "127.0.21.3"
				if int(reads.Add(1)) <= tt.stale {
					ip = "127.0.21.2"
				}
				return header + "3 b 1 s1 " + ip + " 0 1 9000\n"
			})
			start := time.Now()
			cfg := []byte("backend b\n    server s1 127.0.21.3:9000 weight " + tt.weight + "\n")
			_, err := Client{Addr: addr}.Verify(context.Background(), cfg, []string{"b"})
			took := time.Since(start)
			if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
				t.Errorf("Verify = %v; want error %q", err, tt.err)
			}
			if n := int(reads.Load()); n != tt.reads {
				t.Errorf("Verify read the state %d times, want %d", n, tt.reads)
			}
			// The reads counted above bound the loop; this bounds the
			// waits between them (settleBudget), with room for a loaded
			// machine.
			if took > 2*time.Second {
				t.Errorf("Verify took %v: the re-reads must stop after about %v", took, settleBudget)
			}
		})
	}
}

// TestVerifyReadAhead: Verify compares the file with a Reading taken
// ahead instead of reading the backend itself, once: a difference in the
// Reading is reported as one read then; a backend the Reading lacks, or a
// re-read of late addresses, goes to HAProxy. A Reading that failed fails
// the Verify, and a stopped one ends at once.
func TestVerifyReadAhead(t *testing.T) {
	t.Parallel()
	header := "1\n# be_id be_name srv_id srv_name srv_addr srv_admin_state srv_uweight srv_port\n"
	var reads atomic.Int32
	weight := atomic.Value{}
	weight.Store("1")
	addr := serve(t, func(cmd string) string {
		reads.Add(1)
		switch cmd {
		case "show servers state b":
			return header + "3 b 1 s1 127.0.21.3 0 " + weight.Load().(string) + " 9000\n"
		case "show servers state c":
			return header + "4 c 1 s2 127.0.21.4 0 1 9000\n"
		}
		return "Unknown command."
	})
	c := Client{Addr: addr}
	ctx := context.Background()
	cfg := []byte("backend b\n    server s1 127.0.21.3:9000\nbackend c\n    server s2 127.0.21.4:9000\n")
	deadline := time.Now().Add(time.Minute)

	rd := c.ReadAhead(ctx, deadline, []string{"b"})
	if err := rd.wait(); err != nil {
		t.Fatal(err)
	}
	weight.Store("2") // HAProxy changes after the read: Verify does not see it
	reads.Store(0)
	if _, err := c.Verify(ctx, cfg, []string{"b", "c"}, rd); err != nil {
		t.Errorf("Verify with the read ahead: %v", err)
	}
	if n := reads.Load(); n != 1 {
		t.Errorf("Verify read HAProxy %d times, want once (backend c, not in the Reading)", n)
	}

	rd = c.ReadAhead(ctx, deadline, []string{"b"}) // weight 2 now
	if _, err := c.Verify(ctx, cfg, []string{"b"}, rd); err == nil || !strings.Contains(err.Error(), "b/s1: running with weight 2, the file (line 2) says 1") {
		t.Errorf("Verify of a Reading that differs = %v; want the weight named", err)
	}
	rd.Stop() // after use: nothing left to stop

	dead := c.ReadAhead(ctx, time.Now().Add(-time.Second), []string{"b"})
	if _, err := c.Verify(ctx, cfg, []string{"b"}, dead); err == nil {
		t.Error("Verify with a Reading that timed out passed")
	}
	var none *Reading
	none.Stop()
	if _, err := c.Verify(ctx, cfg, []string{"c"}, none); err != nil {
		t.Errorf("Verify with no Reading: %v", err)
	}
}

// serve answers each command on a fresh unix socket with answer(cmd),
// one connection at a time as HAProxy's stats socket does outside
// interactive mode, until the test ends; it returns the socket's path.
func serve(t *testing.T, answer func(cmd string) string) string {
	t.Helper()
	path := filepath.Join(haproxytest.ShortDir(t), "fake.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			cmd, _ := bufio.NewReader(c).ReadString('\n')
			io.WriteString(c, answer(strings.TrimSpace(cmd))+"\n\n")
			c.Close()
		}
	}()
	return path
}
