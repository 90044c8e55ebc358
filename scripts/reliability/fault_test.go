package reliability

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/serf-hb/serf-hb/scripts/internal/harness"
)

// Faults: each case breaks one thing, runs a join of web4 against a good
// state (web1-3 rendered and reloaded), and checks the failed run: the
// exit status, an error naming the cause, the last good output untouched
// (or, for reload faults, the new good output installed), no reload of a
// bad file, no temp files, and the registry holding the truth. Then it
// repairs the fault and checks that a later run converges.

type faultCase struct {
	name string
	// inject breaks something; it returns the repair.
	inject func(t *testing.T, s *sandbox) (repair func())
	code   int      // the failed run's exit status
	msgs   []string // what its stderr must say
	// installs: the fault comes after the install (a reload fault): the
	// new output is in place, and the next run must reload it.
	installs bool
	// publishes: the fault is a stray registry entry, skipped and named
	// (exit 3): web1-4 are published and reloaded all the same.
	publishes bool
	// recorded: web4 is in the registry after the failed run; the later
	// run is then a plain "serf-hb render". Otherwise the event is
	// delivered again.
	recorded bool
	// final is the node set after repair, if not web1-4.
	final []string
	// maxTook bounds the failed run (for timeouts).
	maxTook time.Duration
}

func writeFile(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// useTemplate points the sandbox at a template with body appended to the
// trailer template.
func useTemplate(t *testing.T, s *sandbox, body string) func() {
	p := filepath.Join(s.root, "broken.tmpl")
	writeFile(t, p, string(trailerTmpl)+body)
	old := s.tmpl
	s.tmpl = p
	return func() { s.tmpl = old }
}

func setCheck(s *sandbox, check string) func() {
	old := s.check
	s.check = check
	return func() { s.check = old }
}

func setReload(s *sandbox, reload string) func() {
	old := s.reload
	s.reload = reload
	return func() { s.reload = old }
}

// hangPID returns the PID the "hang" fake wrote to p.
func hangPID(t *testing.T, p string) int {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("the hanging command never started: %v", err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// mustBeDead fails unless the process pid is gone: a timed-out command must
// be killed, not left behind.
func mustBeDead(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		// A zombie still answers kill -0; /proc tells them apart.
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && strings.Contains(string(b), ") Z ") {
			return
		}
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("the timed-out command (pid %d) was left running", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// mountTmpfs mounts a tmpfs of size bytes on dir for the rest of the test:
// directly as root, else through passwordless sudo (as CI has).
func mountTmpfs(t *testing.T, dir string, size int) {
	t.Helper()
	opts := fmt.Sprintf("size=%d,mode=0755", size)
	if os.Geteuid() == 0 {
		if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, opts); err != nil {
			t.Fatalf("mount a tmpfs on %s: %v; hint: the fault tests need root or passwordless sudo", dir, err)
		}
		t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
		return
	}
	opts += fmt.Sprintf(",uid=%d,gid=%d", os.Getuid(), os.Getgid())
	if out, err := exec.Command("sudo", "-n", "mount", "-t", "tmpfs", "-o", opts, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount a tmpfs on %s: sudo -n mount: %v: %s; hint: the fault tests need root or passwordless sudo", dir, err, out)
	}
	t.Cleanup(func() { exec.Command("sudo", "-n", "umount", "-l", dir).Run() })
}

func remount(t *testing.T, dir string, readOnly bool) {
	t.Helper()
	var flags uintptr = syscall.MS_REMOUNT
	opt := "remount,rw"
	if readOnly {
		flags |= syscall.MS_RDONLY
		opt = "remount,ro"
	}
	var err error
	if os.Geteuid() == 0 {
		err = syscall.Mount("", dir, "", flags, "")
	} else {
		var out []byte
		out, err = exec.Command("sudo", "-n", "mount", "-o", opt, dir).CombinedOutput()
		if err != nil {
			err = fmt.Errorf("%v: %s", err, out)
		}
	}
	if err != nil {
		t.Fatalf("mount -o %s %s: %v", opt, dir, err)
	}
}

// moveOnto mounts a tmpfs on dir, keeping dir's files (copied in).
func moveOnto(t *testing.T, dir string, size int) {
	t.Helper()
	saved := map[string][]byte{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		saved[e.Name()] = b
	}
	mountTmpfs(t, dir, size)
	for name, b := range saved {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// fill writes a file in dir until the file system is full, and returns
// its path.
func fill(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, ".filler")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 1024)
	for i := 0; i < 1<<20; i++ {
		if _, err := f.Write(chunk); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return p
			}
			t.Fatal(err)
		}
	}
	t.Fatalf("%s never filled up", dir)
	return ""
}

// unprivileged makes serf-hb run as nobody when the test runs as root (for
// whom no file is unreadable); otherwise it runs as the test's own user.
func unprivileged(t *testing.T, s *sandbox) {
	t.Helper()
	if os.Geteuid() != 0 {
		return
	}
	if err := os.Chmod(filepath.Dir(s.root), 0o755); err != nil {
		t.Fatal(err)
	}
	err := filepath.Walk(s.root, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, 65534, 65534)
	})
	if err != nil {
		t.Fatal(err)
	}
	s.cred = &syscall.Credential{Uid: 65534, Gid: 65534}
}

var faultCases = []faultCase{
	{
		name: "template syntax error",
		inject: func(t *testing.T, s *sandbox) func() {
			return useTemplate(t, s, "{% for node in nodes %}{{ node.name }}\n")
		},
		code: 4, msgs: []string{"parse template", "broken.tmpl", "for"}, recorded: true,
	},
	{
		name: "template runtime error",
		inject: func(t *testing.T, s *sandbox) func() {
			return useTemplate(t, s, "# built {{ role|date:\"2006\" }}\n")
		},
		code: 4, msgs: []string{"execute template", "broken.tmpl", "date"}, recorded: true,
	},
	{
		// pongo2 itself panics on some templates (a division by zero, a
		// {% cycle %} without values): that must be a template error too.
		name: "template that makes pongo2 panic",
		inject: func(t *testing.T, s *sandbox) func() {
			return useTemplate(t, s, "# {{ 1/0 }}\n")
		},
		code: 4, msgs: []string{"execute template", "broken.tmpl", "divide by zero"}, recorded: true,
	},
	{
		name: "check command fails",
		inject: func(t *testing.T, s *sandbox) func() {
			return setCheck(s, shellJoin(filepath.Join(toolsDir, "fail"), "[ALERT] config: no such backend", "{}"))
		},
		code: 5, msgs: []string{"exited 3", "[ALERT] config: no such backend", "no reload"}, recorded: true,
	},
	{
		name: "haproxy -c refuses the config",
		inject: func(t *testing.T, s *sandbox) func() {
			undo := useTemplate(t, s, "    bogus-directive on\n")
			undoCheck := setCheck(s, harness.HAProxyCheck())
			return func() { undo(); undoCheck() }
		},
		code: 5, msgs: []string{"haproxy -c -f", "exited 1", "bogus-directive", "no reload"}, recorded: true,
	},
	{
		name: "check command hangs (timeout)",
		inject: func(t *testing.T, s *sandbox) func() {
			s.extra = []string{"--check-timeout", "1s"}
			undo := setCheck(s, shellJoin(filepath.Join(toolsDir, "hang"), filepath.Join(s.root, "check.pid"), "{}"))
			return func() {
				mustBeDead(t, hangPID(t, filepath.Join(s.root, "check.pid")))
				s.extra = nil
				undo()
			}
		},
		code: 5, msgs: []string{"timed out after 1s", "killed"}, recorded: true, maxTook: 4 * time.Second,
	},
	{
		name: "check command missing",
		inject: func(t *testing.T, s *sandbox) func() {
			return setCheck(s, "no-such-checker -c -f {}")
		},
		code: 5, msgs: []string{"no-such-checker", "not found"}, recorded: true,
	},
	{
		name: "reload command fails",
		inject: func(t *testing.T, s *sandbox) func() {
			return setReload(s, shellJoin(filepath.Join(toolsDir, "fail"), "reload refused by supervisor"))
		},
		code: 6, msgs: []string{"exited 3", "reload refused by supervisor", "retried on the next run"}, installs: true, recorded: true,
	},
	{
		name: "reload command hangs (timeout)",
		inject: func(t *testing.T, s *sandbox) func() {
			s.extra = []string{"--reload-timeout", "1s"}
			undo := setReload(s, shellJoin(filepath.Join(toolsDir, "hang"), filepath.Join(s.root, "reload.pid")))
			return func() {
				mustBeDead(t, hangPID(t, filepath.Join(s.root, "reload.pid")))
				s.extra = nil
				undo()
			}
		},
		code: 6, msgs: []string{"timed out after 1s", "retried on the next run"}, installs: true, recorded: true, maxTook: 4 * time.Second,
	},
	{
		// s6-svc -h DIR is done in process: no s6-svc on $PATH is needed,
		// and the service directory decides, as it would for s6-svc.
		name: "s6-svc missing from $PATH",
		inject: func(t *testing.T, s *sandbox) func() {
			empty := filepath.Join(s.root, "empty-bin")
			os.Mkdir(empty, 0o755)
			oldPath := s.path
			s.path = empty
			undo := setReload(s, "s6-svc -h "+filepath.Join(s.root, "service"))
			// The check fake needs grep from $PATH.
			undoCheck := setCheck(s, "")
			return func() { s.path = oldPath; undo(); undoCheck() }
		},
		code: 6, msgs: []string{"s6-svc -h", "exited 111", "service is missing or not accessible", "s6-svc: fatal: unable to control"}, installs: true, recorded: true,
	},
	{
		name: "s6 service directory missing",
		inject: func(t *testing.T, s *sandbox) func() {
			return setReload(s, "s6-svc -h "+filepath.Join(s.root, "no-such-service"))
		},
		code: 6, msgs: []string{"exited 111", "no-such-service is missing"}, installs: true, recorded: true,
	},
	{
		name: "s6 service directory not supervised",
		inject: func(t *testing.T, s *sandbox) func() {
			os.Mkdir(filepath.Join(s.root, "ha"), 0o755)
			return setReload(s, "s6-svc -h "+filepath.Join(s.root, "ha"))
		},
		code: 6, msgs: []string{"exited 100", "not supervised", "supervisor not listening"}, installs: true, recorded: true,
	},
	{
		name: "output directory read-only",
		inject: func(t *testing.T, s *sandbox) func() {
			moveOnto(t, s.outDir, 1<<20)
			remount(t, s.outDir, true)
			return func() { remount(t, s.outDir, false) }
		},
		code: 1, msgs: []string{"haproxy.cfg", "read-only file system"}, recorded: true,
	},
	{
		name: "output file system full",
		inject: func(t *testing.T, s *sandbox) func() {
			moveOnto(t, s.outDir, 64<<10)
			filler := fill(t, s.outDir)
			return func() { os.Remove(filler) }
		},
		code: 1, msgs: []string{"haproxy.cfg", "no space left on device"}, recorded: true,
	},
	{
		name: "registry file system full",
		inject: func(t *testing.T, s *sandbox) func() {
			moveOnto(t, s.nodes, 64<<10)
			filler := fill(t, s.nodes)
			return func() { os.Remove(filler) }
		},
		code: 1, msgs: []string{"web4", "no space left on device"},
	},
	{
		name: "registry directory missing",
		inject: func(t *testing.T, s *sandbox) func() {
			if err := os.Rename(s.nodes, s.nodes+".away"); err != nil {
				t.Fatal(err)
			}
			return func() {
				if _, err := os.Stat(s.nodes); err == nil {
					t.Errorf("serf-hb created the missing registry directory")
					os.RemoveAll(s.nodes)
				}
				os.Rename(s.nodes+".away", s.nodes)
			}
		},
		code: 1, msgs: []string{"open registry", "does not exist", "never creates"},
	},
	{
		name: "unreadable file in the registry",
		inject: func(t *testing.T, s *sandbox) func() {
			p := filepath.Join(s.nodes, "web9")
			writeFile(t, p, "web9 127.0.3.9\n{\"role\":\"backend\"}\n")
			unprivileged(t, s)
			os.Chmod(p, 0)
			return func() { os.Chmod(p, 0o644) }
		},
		code: 3, msgs: []string{"web9", "permission denied", "hint: make it readable"}, recorded: true, publishes: true,
		final: []string{"web1", "web2", "web3", "web4", "web9"},
	},
	{
		name: "empty file in the registry",
		inject: func(t *testing.T, s *sandbox) func() {
			p := filepath.Join(s.nodes, "web9")
			writeFile(t, p, "")
			return func() { os.Remove(p) }
		},
		code: 3, msgs: []string{"web9", "empty", "hint: move it out of the registry"}, recorded: true, publishes: true,
	},
	{
		name: "stray subdirectory in the registry",
		inject: func(t *testing.T, s *sandbox) func() {
			p := filepath.Join(s.nodes, "stray")
			os.Mkdir(p, 0o755)
			return func() { os.Remove(p) }
		},
		code: 3, msgs: []string{"stray", "is a directory, not a node file", "hint: move it out of the registry"}, recorded: true, publishes: true,
	},
}

func TestFaults(t *testing.T) {
	for _, fc := range faultCases {
		t.Run(strings.ReplaceAll(fc.name, " ", "_"), func(t *testing.T) {
			s := newSandbox(t)
			good := []string{"web1", "web2", "web3"}
			s.mustRun(0, "member-join", joinLines(good...))
			goodOut, _ := os.ReadFile(s.out)
			recsBefore := len(s.records())

			repair := fc.inject(t, s)
			r := s.runID("member-join", "fault", joinLines("web4"))
			failed := r
			t.Logf("failed run (exit %d, %v): %s", r.code, r.took.Round(time.Millisecond), strings.TrimSpace(r.stderr))
			if r.code != fc.code {
				t.Errorf("exit status %d, want %d", r.code, fc.code)
			}
			for _, m := range fc.msgs {
				if !strings.Contains(r.stderr, m) {
					t.Errorf("stderr does not say %q", m)
				}
			}
			if strings.Contains(r.stderr, "panic") && !strings.Contains(r.stderr, "err=") {
				t.Errorf("serf-hb crashed instead of reporting an error")
			}
			if fc.maxTook > 0 && r.took > fc.maxTook {
				t.Errorf("the failed run took %v, more than %v", r.took, fc.maxTook)
			}
			out, err := os.ReadFile(s.out)
			if err != nil {
				t.Fatalf("output gone: %v", err)
			}
			if fc.installs || fc.publishes {
				if names, err := parseOutput(out); err != nil || !sameSet(names, append(good, "web4")) {
					t.Errorf("output after the fault: %v %v; want the new good file web1-4", names, err)
				}
			} else if !bytes.Equal(out, goodOut) {
				t.Errorf("the last good output was not left in place")
			}
			wantReloads := 0
			if fc.publishes {
				wantReloads = 1
			}
			if n := len(s.records()); n != recsBefore+wantReloads {
				t.Errorf("%d reload(s) happened in the failed run, want %d", n-recsBefore, wantReloads)
			}
			if ts := s.outTemps(); len(ts) > 0 && !(len(ts) == 1 && ts[0] == ".filler") {
				t.Errorf("temp files left in the output directory: %v", ts)
			}
			repair()
			s.cred = nil

			wantReg := good
			if fc.recorded {
				wantReg = append(wantReg, "web4")
			}
			if fc.name != "registry directory missing" {
				reg, err := readRegistry(s.nodes)
				if fc.name == "unreadable file in the registry" || fc.name == "empty file in the registry" {
					delete(reg.Nodes, "web9")
				}
				if temps := reg.Temps; err != nil || !sameSet(reg.Names(), wantReg) || len(temps) > 0 && !(len(temps) == 1 && temps[0] == ".filler") {
					t.Errorf("registry after the failed run: %v (temps %v, %v), want %v", reg.Names(), temps, err, wantReg)
				}
			}

			// A later run converges: a plain render when the registry
			// already holds web4, the same event again otherwise.
			if fc.recorded {
				r = s.runID("", "later", nil, "render")
			} else {
				r = s.runID("member-join", "later", joinLines("web4"))
			}
			if r.code != 0 {
				t.Fatalf("the run after the repair exited %d: %s", r.code, r.stderr)
			}
			final := fc.final
			if final == nil {
				final = append(good, "web4")
			}
			names, err := s.outputNames()
			if err != nil || !sameSet(names, final) {
				t.Fatalf("after the repair the output lists %v (%v), want %v", names, err, final)
			}
			if err := haproxyCheck(s.out); err != nil {
				t.Fatal(err)
			}
			recs := s.records()
			now, _ := os.ReadFile(s.out)
			// A stray entry's run published web1-4 itself: the later run
			// reloads only if the repair changed the output.
			last := len(recs) > recsBefore && bytes.Equal(recs[len(recs)-1].content, now)
			if !last || recs[len(recs)-1].id != "later" && !(fc.publishes && recs[len(recs)-1].id == "fault") {
				t.Fatalf("after the repair the final output was not reloaded by the later run")
			}
			if reloadPending(s.nodes) {
				t.Fatalf("a reload is still pending after the repair")
			}
			errText := failed.stderr
			if i := strings.Index(errText, "err="); i >= 0 {
				errText = errText[i+4:]
			}
			errText = strings.ReplaceAll(strings.TrimSpace(errText), s.root, "$SANDBOX")
			errText = strings.ReplaceAll(errText, toolsDir, "$TOOLS")
			errText = strings.ReplaceAll(errText, "|", "\\|")
			kept := "last good output kept"
			if fc.installs {
				kept = "new good output installed, reload retried"
			}
			report(t, "1 failed run + 1 run after repair",
				fmt.Sprintf("exit %d; stderr says %q; %s; no reload; no temp files; registry holds the truth; later run converges and reloads", fc.code, fc.msgs, kept),
				fmt.Sprintf("pass (failed run %v): %s", failed.took.Round(time.Millisecond), errText))
		})
	}
}
