package master

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/serf-hb/serf-hb/handler/s6"
	"github.com/serf-hb/serf-hb/internal/haproxytest"
)

// TestReloadRealHAProxy reloads a real HAProxy ($HAPROXY_BIN: 2.6 answers
// nothing and is polled, 3.0 answers the verdict) in master-worker mode
// through the master CLI's reload; its stderr is a regular file, which is
// where the error lines of the failed reload come from.
func TestReloadRealHAProxy(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	l.install(t, "one", "")
	l.start(t)
	l.serves(t, "one")
	goodBadGood(t, l, &Client{Addr: l.sock, Timeout: 15 * time.Second}, nil, nil)

	// The worker's stats socket given for the master CLI.
	stats := &Client{Addr: filepath.Join(l.dir, "stats.sock"), Timeout: time.Second}
	_, err := stats.Reload(context.Background(), nil)
	var se *SocketError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "Unknown command") || !strings.Contains(err.Error(), "not a stats socket") {
		t.Errorf("Reload through the stats socket = %v; want a *SocketError saying it is no master CLI", err)
	}
}

// goodBadGood reloads the lab (serving backend one) three times with
// trigger: a good configuration is verified and serves; one that passes
// haproxy -c and fails to bind is reported with HAProxy's own error line
// while the previous configuration keeps serving; the next good one is
// verified again. A nil trigger is the master CLI's reload; next, if not
// nil, is called before each reload (to change the trigger).
func goodBadGood(t *testing.T, l *lab, c *Client, trigger func(context.Context) error, next func(step int)) {
	t.Helper()
	before, err := c.ShowProc(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	serving, _ := before.Current()
	step := func(i int) {
		if next != nil {
			next(i)
		}
	}

	l.install(t, "two", "")
	step(0)
	res, err := c.Reload(context.Background(), trigger)
	if err != nil {
		t.Fatalf("good reload: %v", err)
	}
	if res.OldWorker != serving.PID || res.NewWorker == 0 || res.NewWorker == serving.PID {
		t.Errorf("good reload: %+v, the worker before was %d", res, serving.PID)
	}
	t.Logf("good reload verified after %v", res.Wait)
	l.switchesTo(t, "two")

	// The bad configuration routes to backend one, so that a request
	// answered by two proves the previous configuration serves.
	l.install(t, "one", missingIP+":80")
	step(1)
	t0 := time.Now()
	res, err = c.Reload(context.Background(), trigger)
	var re *ReloadError
	if !errors.As(err, &re) {
		t.Fatalf("bad reload: %+v, %v; want a *ReloadError", res, err)
	}
	t.Logf("bad reload detected after %v: %v", time.Since(t0), err)
	if re.Worker != res.OldWorker {
		t.Errorf("bad reload: worker %d serves, the worker before was %d", re.Worker, res.OldWorker)
	}
	for _, s := range []string{"cannot bind socket", "[" + missingIP + ":80]", l.sock, "hint: "} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("bad reload: the error does not say %q: %v", s, err)
		}
	}
	// The master resumes the old worker's listeners (paused while the new
	// process retried the bind) with a signal, which the worker may handle
	// a moment after the verdict: wait for it, then check it serves.
	t0 = time.Now()
	l.switchesTo(t, "two")
	t.Logf("the previous configuration serves again %v after the verdict", time.Since(t0))

	l.install(t, "one", "")
	step(2)
	res, err = c.Reload(context.Background(), trigger)
	if err != nil {
		t.Fatalf("good reload after a bad one: %v", err)
	}
	if res.OldWorker != re.Worker || res.NewWorker == re.Worker {
		t.Errorf("good reload after a bad one: %+v, the worker before was %d", res, re.Worker)
	}
	l.switchesTo(t, "one")
}

// TestReloadUnderS6 runs HAProxy as an s6 service the way a load balancer
// host does (the run script execs haproxy -W, an s6-log logs its stderr)
// and reloads it with the in-process s6 control command: SIGHUP first,
// then SIGUSR2. The error lines of the failed reload come from s6-log's
// file, as HAProxy 2.6 keeps them nowhere else.
func TestReloadUnderS6(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	l.install(t, "one", "")
	scan := filepath.Join(l.dir, "scan")
	svc := filepath.Join(scan, "haproxy")
	logdir := filepath.Join(l.dir, "log")
	writeScript(t, filepath.Join(svc, "run"), fmt.Sprintf("exec 2>&1\nexec %s -W -db -S %s -f %s", l.haproxy, l.sock, l.cfg))
	// t: a TAI64N timestamp before each line, as s6-log setups often have.
	writeScript(t, filepath.Join(svc, "log", "run"), "exec s6-log -b t "+logdir)
	var out bytes.Buffer
	haproxytest.RequireTools(t, "s6-log")
	haproxytest.StartScan(t, scan, &out)
	l.waitWorker(t)
	l.serves(t, "one")

	c := &Client{Addr: l.sock, Timeout: 15 * time.Second, Log: filepath.Join(logdir, "current")}
	p, err := c.ShowProc(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { killIfHAProxy(p.Master.PID) })
	if fi, err := os.Stat(fmt.Sprintf("/proc/%d/fd/2", p.Master.PID)); err != nil || fi.Mode().IsRegular() {
		t.Fatalf("haproxy's stderr under s6-log should be a pipe: %v, %v", fi, err)
	}
	sig := s6.Signal{Cmd: 'h', Dir: svc}
	trigger := func(context.Context) error { return sig.Send() }
	goodBadGood(t, l, c, trigger, func(step int) {
		if step > 0 {
			sig.Cmd = '2'
		}
	})
	if t.Failed() {
		t.Logf("s6-svscan said: %s", out.String())
	}
}

func writeScript(t *testing.T, file, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
}

// killIfHAProxy kills the process group of pid if pid is still an haproxy
// (s6-svscanctl -t normally stopped it already).
func killIfHAProxy(pid int) {
	if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err == nil && strings.TrimSpace(string(comm)) == "haproxy" {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// TestReloadAnswerReal sends the master CLI's reload to a real HAProxy as
// it is and reads the answer that fake_test.go imitates: from 2.7 on (the
// branch the master names in show proc), "Success=1" or "Success=0", then
// "--" and the startup messages, once the new configuration is loaded or
// refused; on 2.6, nothing (the master re-executes). scripts/test.sh runs
// it on 2.6.12 and on 3.0.11.
func TestReloadAnswerReal(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	l.install(t, "one", "")
	l.start(t)
	l.serves(t, "one")
	c := &Client{Addr: l.sock, Timeout: 15 * time.Second}
	ctx := context.Background()
	p, err := c.ShowProc(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var major, minor int
	if _, err := fmt.Sscanf(p.Master.Version, "%d.%d", &major, &minor); err != nil {
		t.Fatalf("show proc: master version %q: %v", p.Master.Version, err)
	}
	answers := major > 2 || major == 2 && minor >= 7
	t.Logf("HAProxy %s: reload answers with a verdict: %v", p.Master.Version, answers)

	reload := func() (ok bool, log []string, known bool, raw string) {
		t.Helper()
		a, err := c.exchange(ctx, "reload", false)
		if answers && err != nil {
			t.Fatalf("reload on HAProxy %s: %v", p.Master.Version, err)
		}
		ok, log, known = parseReloadAnswer(a)
		return ok, log, known, string(a)
	}

	l.install(t, "two", "")
	ok, log, known, raw := reload()
	switch {
	case answers && (!known || !ok || !strings.Contains(strings.Join(log, "\n"), "Loading success")):
		t.Errorf("good reload on HAProxy %s answered %q; want Success=1, --, and the startup messages", p.Master.Version, raw)
	case !answers && strings.TrimSpace(raw) != "":
		t.Errorf("reload on HAProxy %s answered %q; want nothing", p.Master.Version, raw)
	}
	l.switchesTo(t, "two")

	// Refused: passes haproxy -c, fails to bind in the new worker.
	l.install(t, "one", missingIP+":80")
	ok, log, known, raw = reload()
	if answers {
		if !known || ok || !strings.Contains(strings.Join(log, "\n"), "cannot bind socket") {
			t.Errorf("refused reload on HAProxy %s answered %q; want Success=0, --, and the bind error", p.Master.Version, raw)
		}
		// The verdict came after the load: show proc already counts it.
		after, err := c.ShowProc(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if after.Failed != 1 {
			t.Errorf("show proc after Success=0: failed %d, want 1", after.Failed)
		}
	} else if strings.TrimSpace(raw) != "" {
		t.Errorf("reload on HAProxy %s answered %q; want nothing", p.Master.Version, raw)
	}
	l.switchesTo(t, "two")
}
