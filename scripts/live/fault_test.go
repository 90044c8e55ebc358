package live

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/serf-hb/serf-hb/scripts/internal/harness"

	"github.com/serf-hb/serf-hb/internal/haproxytest"
)

// healed fails the test unless HAProxy runs exactly the installed file's
// servers, each in rotation (not left in maintenance or drained), and a
// request reaches each healthy backend given.
func (l *lab) healed(bs ...*backend) {
	l.t.Helper()
	l.assertLiveIsFile()
	live := l.mustServers()
	for _, f := range l.fileServers() {
		if s := live[f.Name]; s.maint() || s.draining() {
			l.t.Fatalf("%s is out of rotation (admin state %d) though the file has it", f.Name, s.admin)
		}
	}
	// Round robin: two turns reach every server in rotation twice.
	got := l.answers(2*len(l.fileServers()) + 2)
	for _, b := range bs {
		if got[b.name] == 0 {
			l.t.Fatalf("answers %v: none from %s", got, b.name)
		}
	}
}

// reloadPending reports whether the registry records a reload as due.
func (l *lab) reloadPending() bool {
	b, _ := os.ReadFile(filepath.Join(l.nodes, ".lock"))
	return bytes.Contains(b, []byte("reload-pending "+l.out))
}

// TestFaults: each fault ends with HAProxy running the installed file's
// servers after at most one more run, and a log line saying what went
// wrong.
func TestFaults(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts tmplOpts
		// before breaks something; it returns flags for the run.
		before func(t *testing.T, l *lab) []string
		// want is in the run's live= (why it reloaded).
		want string
		// bound is how long the run may take, 0 for no bound.
		bound time.Duration
	}{
		{name: "socket missing", want: "no such file or directory; hint: add 'stats socket",
			before: func(t *testing.T, l *lab) []string {
				return []string{"--haproxy-socket", filepath.Join(l.dir, "missing.sock")}
			}},
		{name: "socket refuses", want: "connection refused; hint: is HAProxy running",
			before: func(t *testing.T, l *lab) []string {
				return []string{"--haproxy-socket", haproxytest.Refusing(t, filepath.Join(l.dir, "stale.sock"))}
			}},
		{name: "socket hangs", want: "no complete answer in time (timeout 500ms)", bound: 3 * time.Second,
			before: func(t *testing.T, l *lab) []string {
				return []string{"--haproxy-socket", hangingSocket(t, l), "--haproxy-timeout", "500ms"}
			}},
		{name: "weight set by hand", want: "nodes/web1: running with weight 50, the file",
			before: func(t *testing.T, l *lab) []string {
				l.command("set weight nodes/web1 50")
				return nil
			}},
		{name: "server deleted by hand", want: "nodes/web1: in the file",
			before: func(t *testing.T, l *lab) []string {
				l.command("set server nodes/web1 state maint")
				// A client's keep-alive session can stay attached to the
				// server (seen: "1 sessions active" at maint, the delete
				// still refused 3 s later): cut it, as an operator
				// deleting a server by hand does. HAProxy lets go of the
				// server's idle connections on its own schedule: once, on
				// a CI run, the delete was still refused after 10 s
				// ("Server still has connections attached to it"), so
				// the bound is 30 s.
				l.command("shutdown sessions server nodes/web1")
				l.waitFor("del server nodes/web1", 30*time.Second, func() error {
					_, err := l.runtime().Command(context.Background(), "del server nodes/web1")
					return err
				})
				return nil
			}},
		{name: "address set by hand", want: "web1: running at " + netPrefix + "254 port 1",
			before: func(t *testing.T, l *lab) []string {
				l.command("set server nodes/web1 addr " + netPrefix + "254 port 1")
				return nil
			}},
		{name: "static-rr", opts: tmplOpts{balance: "static-rr"}, want: "balance static-rr is static"},
		{name: "keyword refused at runtime", opts: tmplOpts{backend: "    cookie SRV insert indirect nocache\n", server: " cookie {{ node.name }}"},
			want: `HAProxy 2.6 refuses keyword "cookie" for a server added at runtime`},
		{name: "default-server", opts: tmplOpts{backend: "    default-server inter 300ms\n"},
			want: "would not inherit default-server"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, bs := joined(t, tc.opts, "web1")
			var flags []string
			if tc.before != nil {
				flags = tc.before(t, l)
			}
			reloads, _ := l.reloads()
			web2 := startBackend(t, "web2")
			r := l.hb("member-join", []member{web2.member()}, flags...)
			if r.code != 0 || r.result() != "reloaded" || !strings.Contains(r.live(), tc.want) {
				t.Fatalf("want result=reloaded and live=...%s...; got %s", tc.want, r)
			}
			if n, _ := l.reloads(); n != reloads+1 {
				t.Fatalf("reloads %d -> %d, want one", reloads, n)
			}
			// The change, its Verify and the state dump before the
			// reload share one --haproxy-timeout.
			if tc.bound > 0 && r.wall > tc.bound {
				t.Fatalf("the run took %v, over %v", r.wall, tc.bound)
			}
			if l.reloadPending() {
				t.Fatalf("a reload is still recorded as due after a verified one")
			}
			if d := l.liveMismatch(); d != "" {
				// At most one more run.
				r2 := l.hb("member-update", []member{web2.member()})
				t.Logf("after the reload: %s; one more run: %s", d, r2)
			}
			l.healed(bs["web1"], web2)
			t.Logf("%s: %s", tc.name, r.live())
		})
	}
}

// hangingSocket is a unix socket that accepts connections and never
// answers, until the test ends.
func hangingSocket(t *testing.T, l *lab) string {
	return haproxytest.Silent(t, "unix", filepath.Join(l.dir, "hang.sock"))
}

// TestCheckRefusesLive: a change applied live whose file the check then
// refuses is taken back: HAProxy runs the installed file again, the
// refused file is kept beside it, exit 5.
func TestCheckRefusesLive(t *testing.T) {
	l, bs := joined(t, tmplOpts{}, "web1")
	reloads, _ := l.reloads()
	before, err := os.ReadFile(l.out)
	l.must(err)
	web2 := startBackend(t, "web2")
	r := l.hb("member-join", []member{web2.member()}, "--check", "sh -c 'exit 1' {}")
	if r.code != 5 || r.result() != "check-failed" || !strings.HasPrefix(r.live(), "undone: added 1 (nodes/web2)") {
		t.Fatalf("want exit 5, result=check-failed, live=undone: added ...; got %s", r)
	}
	after, err := os.ReadFile(l.out)
	l.must(err)
	if !bytes.Equal(before, after) {
		t.Fatalf("%s changed though the check refused the new one", l.out)
	}
	if rej, err := os.ReadFile(l.out + ".rejected"); err != nil || !bytes.Contains(rej, []byte("server web2 ")) {
		t.Fatalf("%s.rejected should hold the refused file with web2: %v", l.out, err)
	}
	if n, _ := l.reloads(); n != reloads {
		t.Fatalf("HAProxy reloaded")
	}
	if l.reloadPending() {
		t.Fatalf("a reload is recorded as due after the live change was undone")
	}
	l.healed(bs["web1"])
	if got := l.answers(6); got["web2"] != 0 {
		t.Fatalf("answers %v: web2 still gets requests", got)
	}
}

// TestKill9: serf-hb killed with SIGKILL at points of a live apply of
// many servers (before its first command, after some servers were added or
// retired, after every command): the next run heals it, reloading when the
// killed run had marked a reload due, and HAProxy then runs the installed
// file with every server in rotation.
func TestKill9(t *testing.T) {
	const batch = 60
	l, bs := joined(t, tmplOpts{}, "web1")
	var ms []member
	var busy *backend // gets a long request before the leave
	for i := 0; i < batch; i++ {
		b := startBackend(t, "k"+strconv.Itoa(i))
		ms = append(ms, b.member())
		busy = b
	}
	// batchLive counts the servers of the batch HAProxy has in rotation,
	// and those retired (in maintenance).
	batchLive := func() (n, retired int) {
		for name, s := range l.mustServers() {
			switch {
			case !strings.HasPrefix(name, "k"):
			case s.maint():
				retired++
			default:
				n++
			}
		}
		return n, retired
	}
	for _, p := range []struct {
		name  string
		event string
		// kill reports whether to kill now, given the batch's live
		// servers; nil kills at once.
		kill  func(n, retired int) bool
		extra []string // serf-hb's flags beside the lab's
		// few: the event carries 3 members of the batch, whose servers
		// go ahead of the whole file (at most 8 do).
		few bool
	}{
		{"join, at once", "member-join", nil, nil, false},
		{"join, after the first add", "member-join", func(n, _ int) bool { return n >= 1 }, nil, false},
		{"join, half added", "member-join", func(n, _ int) bool { return n >= batch/2 }, nil, false},
		// After the last add a live run has only milliseconds left (the
		// fast check stands in for haproxy -c): a check of its own, slowed
		// down, keeps it alive long enough to be killed there.
		{"join, all added", "member-join", func(n, _ int) bool { return n == batch },
			[]string{"--check", "sh -c 'sleep 1; exec \"$0\" -c -f \"$1\"' " + harness.Quote(harness.Bin("haproxy")) + " {}"}, false},
		// Killed with the adds sent ahead of the whole file, and applied,
		// but no file installed: the next run reloads, and the registry,
		// written before the adds, has the members.
		{"join of 3 added ahead, no file yet", "member-join", func(n, _ int) bool { return n == 3 },
			[]string{"--check", "sh -c 'sleep 1; exec \"$0\" -c -f \"$1\"' " + harness.Quote(harness.Bin("haproxy")) + " {}"}, true},
		{"leave, at once", "member-leave", nil, nil, false},
		{"leave, a server retired", "member-leave", func(_, r int) bool { return r >= 1 }, nil, false},
		{"leave, half removed", "member-leave", func(n, _ int) bool { return n <= batch/2 }, nil, false},
	} {
		t.Run(p.name, func(t *testing.T) {
			defer l.in(t)()
			// The batch in place for a leave, gone for a join.
			if n, _ := batchLive(); (n == 0) == (p.event == "member-leave") {
				opposite := map[string]string{"member-join": "member-leave", "member-leave": "member-join"}[p.event]
				if r := l.hb(opposite, ms); r.code != 0 || r.result() != "applied" {
					t.Fatalf("%s of the batch: %s", opposite, r)
				}
			}
			var slow *slowReq
			if p.event == "member-leave" {
				// A long request keeps one retired server busy for a while.
				slow = l.slowTo(busy, 3000)
			}
			members := ms
			if p.few {
				members = ms[:3]
			}
			cmd := l.hbCmd(p.event, members, p.extra...)
			l.must(cmd.Start())
			// Polled without a pause: the apply takes a few milliseconds.
			var waited error
			for deadline := time.Now().Add(10 * time.Second); p.kill != nil && !p.kill(batchLive()); {
				if time.Now().After(deadline) {
					waited = errorf("not reached in 10s")
					break
				}
			}
			cmd.Process.Kill() // serf-hb alone, as kill -9 PID does
			killed := exitCode(cmd.Wait()) == 128+int(syscall.SIGKILL)
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // its haproxy -c, if one was running
			if waited != nil || !killed {
				t.Fatalf("the run ended before the point of the kill (killed %v, %v)", killed, waited)
			}
			n, retired := batchLive()
			pending := l.reloadPending()
			t.Logf("killed: batch in rotation %d (retired %d), in the file %d, reload due %v", n, retired, len(l.fileServers())-1, pending)
			if p.few && (len(l.fileServers()) != 1 || !pending) {
				t.Fatalf("killed after the adds went ahead: want them in no file yet and a reload due; the file has %d servers, reload due %v", len(l.fileServers()), pending)
			}

			next := l.hb("member-update", []member{bs["web1"].member()})
			if next.code != 0 || pending && next.result() != "reloaded" {
				t.Fatalf("the next run after the kill (reload due %v): %s", pending, next)
			}
			t.Logf("next run: result=%s live=%q", next.result(), next.live())
			l.healed(bs["web1"])
			if n := len(l.fileServers()); p.few && n != 4 {
				t.Fatalf("after the next run the file has %d servers, want web1 and the 3 members the killed run registered", n)
			}
			if slow != nil {
				if err := <-slow.done; err != nil {
					t.Fatalf("the long request to a retired server: %v", err)
				}
			}
			// Serf does not retry: a later event carries the membership.
			again := l.hb(p.event, ms)
			if again.code != 0 {
				t.Fatalf("%s again: %s", p.event, again)
			}
			want := []*backend{bs["web1"]}
			if p.event == "member-join" {
				want = append(want, busy)
			}
			l.healed(want...)
		})
	}
}

// TestStuckWorker: HAProxy's worker stops answering (SIGSTOP) while two
// agents' runs come in at once. The first waits out --haproxy-timeout
// once, then reloads (the master still answers); the second, which waited
// on the registry lock meanwhile, does not wait on the runtime API again.
// Neither run takes more than the timeout plus a reload, and once the
// worker answers again (or was replaced), the next change is live.
func TestStuckWorker(t *testing.T) {
	l, bs := joined(t, tmplOpts{}, "web1")
	_, worker := l.reloads()
	l.must(syscall.Kill(worker, syscall.SIGSTOP))
	defer syscall.Kill(worker, syscall.SIGCONT)

	web2, web3 := startBackend(t, "web2"), startBackend(t, "web3")
	runs := make(chan hbRun, 2)
	for _, b := range []*backend{web2, web3} {
		go func() { runs <- l.hb("member-join", []member{b.member()}, "--haproxy-timeout", "500ms") }()
	}
	var got []hbRun
	for range 2 {
		select {
		case r := <-runs:
			got = append(got, r)
		case <-time.After(30 * time.Second):
			t.Fatalf("the runs against a stuck worker did not end in 30s")
		}
	}
	timedOut := 0
	for _, r := range got {
		if r.code != 0 {
			t.Fatalf("a run against a stuck worker failed: %s", r)
		}
		if strings.Contains(r.live(), "did not answer in time") {
			timedOut++
		}
		// One --haproxy-timeout, a verified reload, and the other run's
		// time on the lock.
		if r.wall > 5*time.Second {
			t.Errorf("a run took %v against a stuck worker: %s", r.wall, r)
		}
	}
	if timedOut != 1 {
		t.Errorf("%d runs waited out the runtime API, want exactly one: %v", timedOut, got)
	}
	t.Logf("runs: %v / %v", got[0], got[1])
	syscall.Kill(worker, syscall.SIGCONT)
	// The reload replaced the stuck worker without its sockets (it could
	// not hand them over), so both listen on the frontend's port until the
	// old one, running again, stops its frontend: a connection the kernel
	// queued to the old socket meanwhile is reset. That is HAProxy's
	// doing; what must heal is the state after it.
	stopped := fmt.Sprintf("(%d) : Proxy localnodes stopped", worker)
	l.waitFor("the stuck worker to stop its frontend", 10*time.Second, func() error {
		if b, _ := os.ReadFile(l.hlog); !bytes.Contains(b, []byte(stopped)) {
			return errorf("no %q in %s", stopped, l.hlog)
		}
		return nil
	})
	l.healed(bs["web1"], web2, web3)
	// The stuck mark is gone with the reload: the next change is live.
	web4 := startBackend(t, "web4")
	applied(t, l.hb("member-join", []member{web4.member()}), "added 1 (nodes/web4)")
}
