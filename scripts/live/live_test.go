package live

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/serf-hb/serf-hb/scripts/internal/harness"
)

// joined starts a lab with backends of the given names joined, and
// returns them by name.
func joined(t testing.TB, o tmplOpts, names ...string) (*lab, map[string]*backend) {
	t.Helper()
	bs := map[string]*backend{}
	var ms []member
	for _, n := range names {
		bs[n] = startBackend(t, n)
		ms = append(ms, bs[n].member())
	}
	return newLab(t, o, ms...), bs
}

// applied fails the test unless r applied its change live, with exit 0.
func applied(t *testing.T, r hbRun, want string) {
	t.Helper()
	if r.code != 0 || r.result() != "applied" || !strings.Contains(r.live(), want) {
		t.Fatalf("want result=applied and live=...%s...; got %s", want, r)
	}
}

func TestJoin(t *testing.T) {
	l, _ := joined(t, tmplOpts{}, "web1")
	reloads, worker := l.reloads()
	if got := l.answers(4); got["web1"] != 4 {
		t.Fatalf("before the join: answers %v, want all from web1", got)
	}

	web2 := startBackend(t, "web2")
	r := l.hb("member-join", []member{web2.member()})
	applied(t, r, "added 1 (nodes/web2); adds sent ahead of the whole file")
	// At once: the run returns with the server in rotation.
	if got := l.answers(10); got["web2"] != 5 || got["web1"] != 5 {
		t.Fatalf("after the join: answers %v, want 5 from each of web1 and web2 (round robin)", got)
	}
	if n, w := l.reloads(); n != reloads || w != worker {
		t.Fatalf("HAProxy reloaded: reloads %d -> %d, worker %d -> %d", reloads, n, worker, w)
	}
	l.assertLiveIsFile()
	s := l.mustServers()["web2"]
	if !s.up() || s.maint() || s.draining() {
		t.Fatalf("web2 runs in op state %d, admin state %d; want UP and in rotation", s.op, s.admin)
	}
	// Its health check runs: a backend that turns sick goes DOWN.
	web2.healthy.Store(false)
	l.waitFor("web2 to go DOWN on its health check", 5*time.Second, func() error {
		if s := l.mustServers()["web2"]; s.up() {
			return errorf("web2 still UP")
		}
		return nil
	})
	if got := l.answers(6); got["web1"] != 6 {
		t.Fatalf("web2 DOWN: answers %v, want all from web1", got)
	}
}

// gone waits until HAProxy no longer runs server name.
func (l *lab) gone(name string, d time.Duration) {
	l.t.Helper()
	l.waitFor(name+" to be deleted from HAProxy", d, func() error {
		if s, ok := l.mustServers()[name]; ok {
			return errorf("%s still there, admin state %d", name, s.admin)
		}
		return nil
	})
}

// deletes reports whether the lab's HAProxy can say a server is
// removable (2.9+: `wait srv-removable`), so that serf-hb deletes the
// servers it retires; before that they stay in maintenance until a reload.
func (l *lab) deletes() bool {
	reply, _ := l.runtime().Command(context.Background(), "wait 1 srv-removable nodes/absent")
	return !strings.HasPrefix(reply, "Unknown command")
}

// TestRemoveRetires: a member that leaves or fails is taken out of
// rotation at once and the run returns without waiting for its streams:
// its in-flight request on a long-lived keep-alive connection completes,
// new requests stop going to it, keep-alive clients see no failure. It
// stays retired, in maintenance, on an HAProxy that cannot say it is
// removable (2.6: a delete there can crash the worker, haproxy#2298);
// where HAProxy can, a later run deletes it once its streams ended.
func TestRemoveRetires(t *testing.T) {
	for _, event := range []string{"member-leave", "member-failed"} {
		t.Run(event, func(t *testing.T) {
			l, bs := joined(t, tmplOpts{}, "web1", "web2")
			reloads, _ := l.reloads()
			s := l.slowTo(bs["web2"], 2500)
			ld := l.startLoad(4, true, 2*time.Millisecond)

			r := l.hb(event, []member{bs["web2"].member()})
			applied(t, r, "retired 1 (nodes/web2)")
			if r.wall > 2*time.Second {
				t.Fatalf("the run took %v: it waited for the stream", r.wall)
			}
			if !l.mustServers()["web2"].maint() {
				t.Fatalf("web2 not in maintenance after its %s run: %+v", event, l.mustServers()["web2"])
			}
			hits := bs["web2"].hits.Load()
			if got := l.answers(10); got["web1"] != 10 {
				t.Fatalf("web2 retired: answers %v, want all from web1", got)
			}
			select {
			case err := <-s.done:
				t.Fatalf("the in-flight request to web2 ended before its time: %v", err)
			default:
			}
			if err := <-s.done; err != nil {
				t.Fatalf("the in-flight request to web2 on its keep-alive connection: %v; want it completed", err)
			}
			if n := bs["web2"].hits.Load(); n != hits {
				t.Fatalf("web2 got %d new requests after its removal", n-hits)
			}
			// The next run, any event, deletes it where HAProxy allows.
			web3 := startBackend(t, "web3")
			r = l.hb("member-join", []member{web3.member()})
			applied(t, r, "added 1 (nodes/web3)")
			_, there := l.mustServers()["web2"]
			if deletes := l.deletes(); there == deletes {
				t.Fatalf("after the next run web2 is there: %v, on an HAProxy that deletes safely: %v; want one of them\n%s", there, deletes, r)
			}
			res := ld.stop()
			if res.failed > 0 || res.ok == 0 {
				t.Fatalf("keep-alive clients: %d ok, %d failed %q; want none failed", res.ok, res.failed, res.fails)
			}
			if n, _ := l.reloads(); n != reloads {
				t.Fatalf("HAProxy reloaded %d times", n-reloads)
			}
			l.assertLiveIsFile()
		})
	}
}

// TestRejoinRevives: a member that comes back while its retired server
// still carries a request is put back in rotation in place: the request
// completes, new requests reach it at once, no reload.
func TestRejoinRevives(t *testing.T) {
	l, bs := joined(t, tmplOpts{}, "web1", "web2")
	reloads, _ := l.reloads()
	s := l.slowTo(bs["web2"], 2000)
	applied(t, l.hb("member-leave", []member{bs["web2"].member()}), "retired 1 (nodes/web2)")
	applied(t, l.hb("member-join", []member{bs["web2"].member()}), "revived 1 (nodes/web2)")
	if got := l.answers(10); got["web2"] != 5 {
		t.Fatalf("after the rejoin: answers %v, want 5 from web2", got)
	}
	if err := <-s.done; err != nil {
		t.Fatalf("the request in flight on web2 across its leave and rejoin: %v; want it completed", err)
	}
	if n, _ := l.reloads(); n != reloads {
		t.Fatalf("HAProxy reloaded")
	}
	l.assertLiveIsFile()
}

// TestFastCheck: a live join's file is proved valid from the installed
// one instead of a whole-file haproxy -c (checked=fast); before a reload
// next loads it, the full check runs on it (checked=full), and a refusal
// then stops the reload, which stays due.
func TestFastCheck(t *testing.T) {
	l, bs := joined(t, tmplOpts{}, "web1")
	web2 := startBackend(t, "web2")
	r := l.hb("member-join", []member{web2.member()})
	applied(t, r, "added 1 (nodes/web2)")
	if r.attrs["checked"] != "fast" {
		t.Fatalf("a live join: checked=%q, want fast: %s", r.attrs["checked"], r)
	}
	reloads, _ := l.reloads()
	r = l.hb("render", nil, "--force", "--check", "sh -c 'exit 1' {}")
	if r.code != 5 || r.result() != "check-failed" || !strings.Contains(r.attrs["err"], "before the reload (it was installed on the fast check)") {
		t.Fatalf("render --force with a refusing check before the reload: want exit 5, check-failed; got %s", r)
	}
	if n, _ := l.reloads(); n != reloads || !l.reloadPending() {
		t.Fatalf("reloads %d -> %d, reload due %v: want no reload, and one due", reloads, n, l.reloadPending())
	}
	r = l.hb("member-update", []member{bs["web1"].member()})
	if r.code != 0 || r.result() != "reloaded" || r.attrs["checked"] != "full" {
		t.Fatalf("the next run: want the full check, then the due reload; got %s", r)
	}
	l.healed(bs["web1"], web2)
}

// TestAheadDisagrees: a template whose server line for a member depends
// on the other members. The line serf-hb adds ahead of the whole file
// (rendered over the joining member alone) is not the line the whole
// file has: the run reloads, and HAProxy runs the file. And when the
// whole render fails after the add went ahead, the add is taken back.
func TestAheadDisagrees(t *testing.T) {
	l, bs := joined(t, tmplOpts{server: ` {% if node.name == "web2" and nodes|length > 1 %}maxconn 50{% endif %}`}, "web1")
	reloads, _ := l.reloads()
	web2 := startBackend(t, "web2")
	r := l.hb("member-join", []member{web2.member()})
	if r.code != 0 || r.result() != "reloaded" || !strings.Contains(r.live(), "server nodes/web2 was added ahead of the whole file, which does not define it so") {
		t.Fatalf("want result=reloaded, live=...added ahead of the whole file, which does not define it so...; got %s", r)
	}
	if n, _ := l.reloads(); n != reloads+1 {
		t.Fatalf("reloads %d -> %d, want one", reloads, n)
	}
	l.healed(bs["web1"], web2)
	if s := l.mustServers()["web2"]; !strings.Contains(l.file(), "maxconn 50") || s.maint() {
		t.Fatalf("web2: want the file's line (maxconn 50), in rotation; admin state %d, file:\n%s", s.admin, l.file())
	}

	l.setTemplate(tmplOpts{server: ` {% if nodes|length > 2 %}{{ node.tags.absent|required:"tag absent" }}{% endif %}`})
	before := l.file()
	web3 := startBackend(t, "web3")
	r = l.hb("member-join", []member{web3.member()})
	if r.code != 4 || !strings.Contains(r.attrs["err"], "tag absent is required here") || !strings.HasPrefix(r.live(), "undone: added 1 (nodes/web3)") {
		t.Fatalf("a whole render that fails after the add went ahead: want exit 4, live=undone: added 1 (nodes/web3); got %s", r)
	}
	if s, ok := l.mustServers()["web3"]; ok && !s.maint() {
		t.Fatalf("web3 is in rotation (admin state %d) though the file was never rendered", s.admin)
	}
	if l.file() != before || l.reloadPending() {
		t.Fatalf("file changed %v, reload due %v: want neither", l.file() != before, l.reloadPending())
	}
	if got := l.answers(6); got["web3"] != 0 {
		t.Fatalf("answers %v: web3 gets requests", got)
	}
}

// TestUpdate: a member-update with a new address, and one with a new
// weight tag, are applied live and verified.
func TestUpdate(t *testing.T) {
	l, bs := joined(t, tmplOpts{}, "web1", "web2")
	reloads, _ := l.reloads()

	moved := startBackend(t, "web2") // web2 at its new address
	r := l.hb("member-update", []member{moved.member()})
	applied(t, r, "readdressed 1 (nodes/web2)")
	if s := l.mustServers()["web2"]; s.addr != moved.ip || s.port != moved.port {
		t.Fatalf("web2 runs at %s:%d, want %s", s.addr, s.port, moved.addr())
	}
	old := bs["web2"].hits.Load()
	if got := l.answers(10); got["web2"] != 5 {
		t.Fatalf("answers %v, want 5 from web2", got)
	}
	if moved.hits.Load() != 5 || bs["web2"].hits.Load() != old {
		t.Fatalf("web2's requests went to the old address %d times, to the new one %d times; want 0 and 5", bs["web2"].hits.Load()-old, moved.hits.Load())
	}
	l.assertLiveIsFile()

	heavy := moved.member()
	heavy.weight = 3
	r = l.hb("member-update", []member{heavy})
	applied(t, r, "reweighted 1 (nodes/web2)")
	if s := l.mustServers()["web2"]; s.weight != 3 {
		t.Fatalf("web2 runs with weight %d, want 3", s.weight)
	}
	if got := l.answers(40); got["web2"] < 28 || got["web2"] > 32 {
		t.Fatalf("answers %v, want about 30 of 40 from web2 (weight 3 against 1)", got)
	}
	if n, _ := l.reloads(); n != reloads {
		t.Fatalf("HAProxy reloaded")
	}
	l.assertLiveIsFile()
}

// TestManyChangesUnderLoad: 100 membership changes (joins, weight and
// address updates, leaves) while clients send requests through the
// frontend, on keep-alive connections and on new ones: no request fails,
// HAProxy never reloads, and it stays one master and one worker.
func TestManyChangesUnderLoad(t *testing.T) {
	l, bs := joined(t, tmplOpts{}, "base1", "base2")
	reloads, worker := l.reloads()
	// Ten members come and go; each has two addresses to move between.
	const pool = 10
	var addrs [pool][2]*backend
	for i := range addrs {
		name := "x" + string(rune('a'+i))
		addrs[i] = [2]*backend{startBackend(t, name), startBackend(t, name)}
	}
	keep := l.startLoad(3, true, 2*time.Millisecond)
	fresh := l.startLoad(1, false, 2*time.Millisecond)
	var took []time.Duration
	for n := 0; n < 100; n++ {
		i, step := n%pool, (n/pool)%5
		m := addrs[i][0].member()
		event := ""
		switch step {
		case 0: // join
			event = "member-join"
		case 1: // heavier
			event, m.weight = "member-update", 2+i%3
		case 2: // moved
			event, m = "member-update", addrs[i][1].member()
			m.weight = 2 + i%3
		case 3: // back to the first address, default weight
			event = "member-update"
		case 4: // leave (retired: the backend keeps serving)
			event = "member-leave"
		}
		r := l.hb(event, []member{m})
		if r.code != 0 || r.result() != "applied" {
			t.Fatalf("change %d (%s %s): want result=applied; got %s", n+1, event, m.name, r)
		}
		d, _ := time.ParseDuration(r.attrs["took"])
		took = append(took, d)
		if step == 0 || step == 2 {
			// At once: the member answers at its new address.
			l.reach(addrs[i][step/2])
		}
		if pids := harness.HAProxyPIDs(l.out); len(pids) != 2 {
			t.Fatalf("after change %d: HAProxy processes %v, want a master and one worker", n+1, pids)
		}
	}
	kr, fr := keep.stop(), fresh.stop()
	for _, r := range []struct {
		what string
		res  loadResult
	}{{"keep-alive clients", kr}, {"new-connection clients", fr}} {
		if r.res.failed > 0 || r.res.ok < 100 {
			t.Errorf("%s: %d ok, %d failed %q; want 0 failed", r.what, r.res.ok, r.res.failed, r.res.fails)
		}
	}
	if n, w := l.reloads(); n != reloads || w != worker {
		t.Fatalf("HAProxy reloaded: reloads %d -> %d, worker %d -> %d", reloads, n, worker, w)
	}
	if pids := harness.HAProxyPIDs(l.out); len(pids) != 2 {
		t.Fatalf("HAProxy processes %v, want a master and one worker", pids)
	}
	l.assertLiveIsFile()
	slices.Sort(took)
	t.Logf("100 changes under load: %d + %d requests, 0 failed, 0 reloads; serf-hb took %v median, %v max; base1 %d, base2 %d requests",
		kr.ok, fr.ok, took[50], took[99], bs["base1"].hits.Load(), bs["base2"].hits.Load())
}

// TestTemplateChange: a change to another line than a server's reloads,
// exactly once, and the reload keeps every server's state: a server an
// operator drained stays drained, a DOWN one stays DOWN and gets no
// request.
func TestTemplateChange(t *testing.T) {
	l, bs := joined(t, tmplOpts{}, "web1", "web2", "sick")
	bs["sick"].healthy.Store(false)
	l.waitFor("sick to go DOWN", 5*time.Second, func() error {
		if l.mustServers()["sick"].up() {
			return errorf("sick still UP")
		}
		return nil
	})
	l.command("set server nodes/web2 state drain")
	reloads, worker := l.reloads()
	sick, web2 := bs["sick"].hits.Load(), bs["web2"].hits.Load()
	keep := l.startLoad(2, true, time.Millisecond)
	fresh := l.startLoad(2, false, time.Millisecond)
	l.waitAnswered(keep, 10)
	l.waitAnswered(fresh, 10)

	l.setTemplate(tmplOpts{backend: "    timeout server 31s\n"})
	r := l.hb("member-update", []member{bs["web1"].member()})
	if r.code != 0 || r.result() != "reloaded" || !strings.Contains(r.live(), `line 27 added: "timeout server 31s"`) || r.attrs["verified"] == "" {
		t.Fatalf("want result=reloaded, verified, live= naming the added line; got %s", r)
	}
	checks := bs["sick"].checks.Load()
	n, w := l.reloads()
	if n != reloads+1 || w == worker {
		t.Fatalf("reloads %d -> %d, worker %d -> %d: want exactly one reload", reloads, n, worker, w)
	}
	// The new worker checks sick 3 times (inter 300ms), and must keep it
	// DOWN.
	l.waitFor("3 health checks of sick after the reload", 10*time.Second, func() error {
		if n := bs["sick"].checks.Load() - checks; n < 3 {
			return errorf("%d checks", n)
		}
		return nil
	})
	kr, fr := keep.stop(), fresh.stop()
	got := l.mustServers()
	if !got["web2"].draining() {
		t.Errorf("web2 after the reload: admin state %d, want drained", got["web2"].admin)
	}
	if got["sick"].up() {
		t.Errorf("sick is UP after the reload, want DOWN")
	}
	if d := bs["sick"].hits.Load() - sick; d != 0 {
		t.Errorf("sick (DOWN) got %d requests", d)
	}
	if d := bs["web2"].hits.Load() - web2; d != 0 {
		t.Errorf("web2 (drained) got %d new requests", d)
	}
	if kr.failed+fr.failed > 0 {
		t.Errorf("clients: %d failed requests %q", kr.failed+fr.failed, append(kr.fails, fr.fails...))
	}
	l.assertLiveIsFile()
	if pids := harness.HAProxyPIDs(l.out); len(pids) > 3 {
		t.Errorf("HAProxy processes %v, want a master, a worker, at most one old worker finishing", pids)
	}
}
