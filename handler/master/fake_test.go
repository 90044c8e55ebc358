package master

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/serf-hb/serf-hb/internal/haproxytest"
)

// PIDs of the fake masters' processes: above Linux's pid_max, so that no
// /proc/PID of a real process is ever read for them.
const (
	fakeMasterPID = 900000001
	fakeOldPID    = 900000002
	fakeNewPID    = 900000003
)

// fakeMaster is a master CLI on a unix socket, for unit tests of answers
// a real HAProxy gives only now and then: HAProxy 2.7+, whose reload
// answers "Success=1|0", "--" and the startup logs (doc/management.txt,
// "reload"; haproxy commits ec059c249 and ec1f8a62c), and a 2.6 master
// re-executing itself (connections closed unanswered). The real thing,
// 2.6.12 and 3.0.11 (HAPROXY_BIN), is tested in reload_real_test.go;
// TestReloadAnswerReal checks the answers imitated here.
type fakeMaster struct {
	addr string

	mu          sync.Mutex
	procs       string // answer to show proc
	reload      string // answer to reload; the connection is closed after it
	next        string // show proc after a reload
	startupLogs string // answer to show startup-logs; "" means unknown command
	hangUps     int    // connections to close unanswered (re-executing)
	got         []string
}

func startFakeMaster(t *testing.T, procs string) *fakeMaster {
	t.Helper()
	f := &fakeMaster{addr: filepath.Join(haproxytest.ShortDir(t), "m.sock"), procs: procs}
	ln, err := net.Listen("unix", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); f.serve(conn) }()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return f
}

// reExec makes the next n connections close unanswered, then show proc
// answer procs: what a 2.6 master does across a reload.
func (f *fakeMaster) reExec(n int, procs string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hangUps, f.procs = n, procs
}

func (f *fakeMaster) commands() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.got...)
}

func (f *fakeMaster) serve(conn net.Conn) {
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.hangUps > 0 {
		f.hangUps--
		return
	}
	for _, cmd := range strings.Split(strings.TrimSpace(line), ";") {
		cmd = strings.TrimSpace(cmd)
		f.got = append(f.got, cmd)
		switch {
		case cmd == "quit":
			return
		case cmd == "show proc":
			fmt.Fprint(conn, f.procs+"\n")
		case cmd == "reload":
			// The 2.7+ master answers once the new configuration loaded
			// and then closes; every later command is ignored.
			fmt.Fprint(conn, f.reload)
			f.procs = f.next
			return
		case cmd == "show startup-logs" && f.startupLogs != "":
			fmt.Fprint(conn, f.startupLogs+"\n")
		default:
			fmt.Fprint(conn, "Unknown command, but maybe one of the following ones is a better match:\n  show proc : show processes status\n\n")
		}
	}
}

// showProc renders the show proc answer of the fake master with the given
// counts, workers and old workers.
func showProc(reloads, failed, worker, workerReloads int, old ...int) string {
	p := Procs{Master: Proc{PID: fakeMasterPID, Reloads: reloads, Uptime: time.Minute, Version: "2.8.5"}, Failed: failed}
	if worker != 0 {
		p.Workers = []Proc{{PID: worker, Reloads: workerReloads, Uptime: 5 * time.Second, Version: "2.8.5"}}
	}
	for _, pid := range old {
		p.OldWorkers = append(p.OldWorkers, Proc{PID: pid, Reloads: 1, Uptime: time.Minute, Version: "2.8.5"})
	}
	return render(p)
}

// render formats p as HAProxy 2.6 answers show proc (mworker.c).
func render(p Procs) string {
	up := func(d time.Duration) string {
		s := int(d / time.Second)
		return fmt.Sprintf("%dd%02dh%02dm%02ds", s/86400, s%86400/3600, s%3600/60, s%60)
	}
	line := func(pid int, typ, reloads string, uptime time.Duration, version string) string {
		return fmt.Sprintf("%-15d %-15s %-15s %-15s %-15s\n", pid, typ, reloads, up(uptime), version)
	}
	s := fmt.Sprintf("#%-14s %-15s %-15s %-15s %-15s\n", "<PID>", "<type>", "<reloads>", "<uptime>", "<version>")
	s += line(p.Master.PID, "master", fmt.Sprintf("%d [failed: %d]", p.Master.Reloads, p.Failed), p.Master.Uptime, p.Master.Version)
	s += "# workers\n"
	for _, w := range p.Workers {
		s += line(w.PID, "worker", fmt.Sprint(w.Reloads), w.Uptime, w.Version)
	}
	if len(p.OldWorkers) > 0 {
		s += "# old workers\n"
		for _, w := range p.OldWorkers {
			s += line(w.PID, "worker", fmt.Sprint(w.Reloads), w.Uptime, w.Version)
		}
	}
	return s + "# programs\n"
}

const (
	bindAlert   = "[ALERT]    (900000001) : Binding [/etc/haproxy/haproxy.cfg:10] for frontend fe: cannot bind socket (Cannot assign requested address) for [192.0.2.77:80]"
	exitAlert   = "[ALERT]    (900000001) : [haproxy.main()] Some protocols failed to start their listeners! Exiting."
	loadFailure = "[WARNING]  (900000001) : Loading failure!"
)

// TestReload27 drives Reload against a fake 2.7+ master CLI.
func TestReload27(t *testing.T) {
	before := showProc(3, 0, fakeOldPID, 0)
	good := showProc(4, 0, fakeNewPID, 0, fakeOldPID)
	bad := showProc(4, 1, fakeOldPID, 1)
	logs := "[NOTICE]   (900000001) : haproxy version is 2.8.5\n" + bindAlert + "\n" + exitAlert + "\n" + loadFailure + "\n"
	tests := []struct {
		name        string
		reload      string
		next        string
		startupLogs string
		log         string // Client.Log's content
		wantErr     bool
		wantLog     []string
		wantSource  string
	}{
		{
			name:    "success with startup logs",
			reload:  "Success=1\n--\n[NOTICE]   (900000001) : New worker (900000003) forked\n[NOTICE]   (900000001) : Loading success.\n",
			next:    good,
			wantLog: []string{"[NOTICE]   (900000001) : New worker (900000003) forked", "[NOTICE]   (900000001) : Loading success."},
		},
		{
			name:   "success without startup logs (no USE_SHM_OPEN)",
			reload: "Success=1\n",
			next:   good,
		},
		{
			name:       "failure with startup logs",
			reload:     "Success=0\n--\n" + logs,
			next:       bad,
			wantErr:    true,
			wantLog:    []string{"[NOTICE]   (900000001) : haproxy version is 2.8.5", bindAlert, exitAlert, loadFailure},
			wantSource: "master CLI",
		},
		{
			name:        "failure, logs from show startup-logs",
			reload:      "Success=0\n",
			next:        bad,
			startupLogs: bindAlert + "\n" + loadFailure,
			wantErr:     true,
			wantLog:     []string{bindAlert, loadFailure},
			wantSource:  "master CLI",
		},
		{
			name:       "failure, logs from Client.Log",
			reload:     "Success=0\n",
			next:       bad,
			log:        "[NOTICE]   (900000001) : Reloading HAProxy\n" + bindAlert + "\n" + loadFailure + "\n",
			wantErr:    true,
			wantLog:    []string{bindAlert, loadFailure},
			wantSource: "LOG",
		},
		{
			name:    "failure, no logs anywhere",
			reload:  "Success=0\n",
			next:    bad,
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := startFakeMaster(t, before)
			f.reload, f.next, f.startupLogs = tt.reload, tt.next, tt.startupLogs
			c := &Client{Addr: f.addr, Timeout: 2 * time.Second}
			if tt.log != "" {
				c.Log = filepath.Join(t.TempDir(), "current")
				if err := os.WriteFile(c.Log, []byte(tt.log), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			res, err := c.Reload(context.Background(), nil)
			if !tt.wantErr {
				if err != nil {
					t.Fatal(err)
				}
				if res.OldWorker != fakeOldPID || res.NewWorker != fakeNewPID || !equal(res.Log, tt.wantLog) {
					t.Errorf("Reload = %+v; want workers %d -> %d, log %q", res, fakeOldPID, fakeNewPID, tt.wantLog)
				}
				return
			}
			var re *ReloadError
			if !errors.As(err, &re) {
				t.Fatalf("Reload = %+v, %v; want a *ReloadError", res, err)
			}
			source := strings.Replace(tt.wantSource, "LOG", c.Log, 1)
			if re.Worker != fakeOldPID || re.Failed != 1 || !equal(re.Log, tt.wantLog) || re.LogSource != source {
				t.Errorf("ReloadError = %+v; want worker %d, failed 1, log %q from %q", re, fakeOldPID, tt.wantLog, source)
			}
			for _, s := range []string{f.addr, "hint: "} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("the error does not say %q: %v", s, err)
				}
			}
			if len(tt.wantLog) > 0 && !strings.Contains(err.Error(), "cannot bind socket (Cannot assign requested address) for [192.0.2.77:80]") {
				t.Errorf("the error does not carry HAProxy's alert: %v", err)
			}
			if len(tt.wantLog) == 0 && !strings.Contains(err.Error(), "stderr") {
				t.Errorf("without messages, the error does not say where to look: %v", err)
			}
		})
	}
}

// TestReloadRefused: a master CLI that answers reload with something else
// than a verdict (a socket of level user: "Permission denied.") gives an
// error that shows the answer.
func TestReloadRefused(t *testing.T) {
	f := startFakeMaster(t, showProc(3, 0, fakeOldPID, 0))
	f.reload, f.next = "Permission denied.\n\n", showProc(3, 0, fakeOldPID, 0)
	c := &Client{Addr: f.addr, Timeout: time.Second}
	_, err := c.Reload(context.Background(), nil)
	var se *SocketError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), `"Permission denied."`) || !strings.Contains(err.Error(), "level,admin") {
		t.Fatalf("Reload = %v; want a *SocketError showing the answer", err)
	}
}

// TestReloadReExec drives Reload through what a 2.6 master does after a
// signal: connections closed unanswered while it re-executes, then a new
// worker or a failed count that went up.
func TestReloadReExec(t *testing.T) {
	tests := []struct {
		name    string
		after   string
		wantErr bool
	}{
		{"success", showProc(4, 0, fakeNewPID, 0, fakeOldPID), false},
		{"failure", showProc(4, 1, fakeOldPID, 1), true},
		{"restarted rather than reloaded", strings.Replace(showProc(0, 0, fakeNewPID, 0), fmt.Sprint(fakeMasterPID), "900000009", 1), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := startFakeMaster(t, showProc(3, 0, fakeOldPID, 0))
			c := &Client{Addr: f.addr, Timeout: 2 * time.Second}
			res, err := c.Reload(context.Background(), func(context.Context) error {
				f.reExec(3, tt.after)
				return nil
			})
			var re *ReloadError
			switch {
			case tt.wantErr && !errors.As(err, &re):
				t.Fatalf("Reload = %+v, %v; want a *ReloadError", res, err)
			case !tt.wantErr && (err != nil || res.NewWorker != fakeNewPID):
				t.Fatalf("Reload = %+v, %v; want new worker %d", res, err, fakeNewPID)
			}
			if n := len(f.commands()); n < 2 {
				t.Errorf("the master was asked %d times, want a show proc before and after", n)
			}
		})
	}
}

// TestReloadNoVerdict: a trigger that reaches nothing (s6 drops a signal
// while the service is down) gives a bounded error that says so.
func TestReloadNoVerdict(t *testing.T) {
	f := startFakeMaster(t, showProc(3, 0, fakeOldPID, 0))
	c := &Client{Addr: f.addr, Timeout: 300 * time.Millisecond}
	_, err := c.Reload(context.Background(), func(context.Context) error { return nil })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Reload = %v; want a deadline exceeded", err)
	}
	for _, s := range []string{f.addr, "no new worker and no failed reload", "hint: ", "s6 drops a signal"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("the error does not say %q: %v", s, err)
		}
	}
}

// TestReloadTriggerError: a failed trigger is returned as is, and nothing
// is verified.
func TestReloadTriggerError(t *testing.T) {
	f := startFakeMaster(t, showProc(3, 0, fakeOldPID, 0))
	c := &Client{Addr: f.addr, Timeout: time.Second}
	boom := errors.New("s6-svc -2 /run/service/haproxy: supervisor not listening")
	if _, err := c.Reload(context.Background(), func(context.Context) error { return boom }); err != boom {
		t.Fatalf("Reload = %v; want the trigger's error", err)
	}
	if got := f.commands(); len(got) != 2 || got[0] != "show proc" {
		t.Errorf("the master was asked %q; want show proc; quit only", got)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
