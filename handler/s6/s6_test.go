package s6

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/serf-hb/serf-hb/internal/haproxytest"
)

func TestParse(t *testing.T) {
	tests := []struct {
		argv []string
		want Signal
		ok   bool
	}{
		{[]string{"s6-svc", "-h", "/run/service/haproxy"}, Signal{'h', "/run/service/haproxy"}, true},
		{[]string{"s6-svc", "-2", "/run/service/haproxy"}, Signal{'2', "/run/service/haproxy"}, true},
		{[]string{"/command/s6-svc", "-h", "svc"}, Signal{'h', "svc"}, true},
		{[]string{"s6-svc", "-h", "--", "-odd"}, Signal{'h', "-odd"}, true},
		{[]string{"s6-svc", "-2", "--", "svc"}, Signal{'2', "svc"}, true},
		{[]string{"s6-svc", "-h", "-"}, Signal{'h', "-"}, true},
		{[]string{"s6-svc", "-h"}, Signal{}, false},
		{[]string{"s6-svc", "-h", ""}, Signal{}, false},
		{[]string{"s6-svc", "-h", "--"}, Signal{}, false},
		{[]string{"s6-svc", "-h", "a", "b"}, Signal{}, false},
		{[]string{"s6-svc", "-h", "-odd"}, Signal{}, false},
		{[]string{"s6-svc", "-t", "svc"}, Signal{}, false},
		{[]string{"s6-svc", "-h2", "svc"}, Signal{}, false},
		{[]string{"s6-svc", "-h", "-2", "svc"}, Signal{}, false},
		{[]string{"s6-svc", "-wr", "-h", "svc"}, Signal{}, false},
		{[]string{"s6-svc", "-T", "100", "-h", "svc"}, Signal{}, false},
		{[]string{"s6-svc", "svc"}, Signal{}, false},
		{[]string{"s6-svc2", "-h", "svc"}, Signal{}, false},
		{[]string{"sudo", "s6-svc", "-h", "svc"}, Signal{}, false},
		{[]string{"s6-svscanctl", "-h", "svc"}, Signal{}, false},
		{nil, Signal{}, false},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.argv, " "), func(t *testing.T) {
			got, ok := Parse(tt.argv)
			if got != tt.want || ok != tt.ok {
				t.Errorf("Parse(%q) = %+v, %v; want %+v, %v", tt.argv, got, ok, tt.want, tt.ok)
			}
		})
	}
}

// TestSendFailsLikeS6Svc builds each broken situation s6-svc tells apart
// and checks that Send gives the same exit code and says the same thing.
func TestSendFailsLikeS6Svc(t *testing.T) {
	haproxytest.RequireTools(t, "s6-svc")
	tests := []struct {
		name  string
		setup func(t *testing.T, svc string)
		code  int
	}{
		{"service directory missing", func(t *testing.T, svc string) {}, CodeSystem},
		{"service directory is a file", func(t *testing.T, svc string) {
			mustWrite(t, svc, "")
		}, CodeSystem},
		{"never supervised", func(t *testing.T, svc string) {
			mustMkdir(t, svc)
		}, CodeNotListening},
		{"supervise without control", func(t *testing.T, svc string) {
			mustMkdir(t, filepath.Join(svc, "supervise"))
		}, CodeNotListening},
		{"supervise is a file", func(t *testing.T, svc string) {
			mustMkdir(t, svc)
			mustWrite(t, filepath.Join(svc, "supervise"), "")
		}, CodeNotListening},
		{"control is a directory", func(t *testing.T, svc string) {
			mustMkdir(t, filepath.Join(svc, "supervise", "control"))
		}, CodeNotListening},
		{"control without a reader", func(t *testing.T, svc string) {
			mustMkdir(t, filepath.Join(svc, "supervise"))
			if err := syscall.Mkfifo(filepath.Join(svc, "supervise", "control"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, CodeNotListening},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := filepath.Join(t.TempDir(), "svc")
			tt.setup(t, svc)
			code, msg := s6svc(t, 0, "-h", svc)
			if code != tt.code {
				t.Fatalf("s6-svc exited %d (%s), the test expects %d", code, msg, tt.code)
			}
			assertSameFailure(t, Signal{'h', svc}.Send(), code, msg)
		})
	}
}

// TestSendPermissionDeniedLikeS6Svc runs s6-svc and Send as user nobody
// against a supervise directory only root may enter, as s6-supervise makes
// it (mode 0700).
func TestSendPermissionDeniedLikeS6Svc(t *testing.T) {
	haproxytest.RequireTools(t, "s6-svc")
	if os.Geteuid() != 0 {
		t.Fatal("this test must run as root: it runs s6-svc and Send as user nobody")
	}
	svc := filepath.Join(haproxytest.ShortDir(t), "svc")
	mustMkdir(t, filepath.Join(svc, "supervise"))
	if err := os.Chmod(filepath.Join(svc, "supervise"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(svc, "supervise", "control"), 0o600); err != nil {
		t.Fatal(err)
	}
	const nobody = 65534
	code, msg := s6svc(t, nobody, "-h", svc)
	if code != CodeSystem {
		t.Fatalf("s6-svc as nobody exited %d (%s), the test expects %d", code, msg, CodeSystem)
	}
	cmd := exec.Command(asUser(t), "-test.run=^$")
	cmd.Env = append(os.Environ(), envSend+"="+svc, noRaceSleep)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("Send as nobody: %v: %s", err, out)
	}
	gotCode, gotMsg, _ := strings.Cut(strings.TrimSpace(string(out)), "\t")
	if gotCode != strconv.Itoa(code) {
		t.Errorf("Send as nobody: code %s, s6-svc exits %d", gotCode, code)
	}
	assertSaysSame(t, gotMsg, msg)
	if !strings.Contains(gotMsg, "hint: run serf-hb as a user") {
		t.Errorf("Send as nobody: %q gives no hint about the user", gotMsg)
	}
}

// TestSendReachesSupervisor signals a service under a real s6-supervise,
// alternating s6-svc and Send, and checks that each delivers exactly one
// signal of the right kind.
func TestSendReachesSupervisor(t *testing.T) {
	svc, counts := startScan(t)
	want := ""
	for i, step := range []struct {
		cmd  byte
		exec bool
	}{{'h', true}, {'h', false}, {'2', true}, {'2', false}, {'h', false}, {'2', false}} {
		s := Signal{Cmd: step.cmd, Dir: svc}
		if step.exec {
			if code, msg := s6svc(t, 0, "-"+string(step.cmd), svc); code != 0 {
				t.Fatalf("step %d: %s exited %d: %s", i, s, code, msg)
			}
		} else if err := s.Send(); err != nil {
			t.Fatalf("step %d: Send: %v", i, err)
		}
		want += string(step.cmd)
		haproxytest.WaitFor(t, 3*time.Second, "signal "+want, func() bool {
			got, _ := os.ReadFile(counts)
			return len(got) >= len(want)
		})
		if got, _ := os.ReadFile(counts); string(got) != want {
			t.Fatalf("step %d (%s, exec %v): the service received %q, want %q", i, s, step.exec, got, want)
		}
	}
}

// TestSendAfterSupervisorStopped checks the commonest real failure: the
// service directory was supervised, and s6-supervise is gone.
func TestSendAfterSupervisorStopped(t *testing.T) {
	svc, _ := startScan(t)
	if err := exec.Command("s6-svscanctl", "-t", filepath.Dir(svc)).Run(); err != nil {
		t.Fatal(err)
	}
	haproxytest.WaitFor(t, 3*time.Second, "s6-supervise to exit", func() bool {
		return exec.Command("s6-svok", svc).Run() != nil
	})
	code, msg := s6svc(t, 0, "-h", svc)
	assertSameFailure(t, Signal{'h', svc}.Send(), code, msg)
}

// assertSameFailure checks that err is an *Error with s6-svc's code that
// says what s6-svc said and names the directory.
func assertSameFailure(t *testing.T, err error, code int, msg string) {
	t.Helper()
	var se *Error
	if !errors.As(err, &se) {
		t.Fatalf("Send = %v, want an *Error (s6-svc exited %d: %s)", err, code, msg)
	}
	if se.Code != code {
		t.Errorf("Send: code %d, s6-svc exits %d (%s): %v", se.Code, code, msg, err)
	}
	assertSaysSame(t, err.Error(), msg)
	if !strings.Contains(err.Error(), se.Signal.Dir) || !strings.Contains(err.Error(), "; hint: ") {
		t.Errorf("Send: %q does not name %s or give a hint", err, se.Signal.Dir)
	}
}

// assertSaysSame checks that ours carries every part of s6-svc's message
// (the parts between ": ") except the generic "unable to control DIR".
func assertSaysSame(t *testing.T, ours, s6msg string) {
	t.Helper()
	for _, part := range strings.Split(s6msg, ": ") {
		if strings.HasPrefix(part, "unable to control ") {
			continue
		}
		if !strings.Contains(strings.ToLower(ours), strings.ToLower(part)) {
			t.Errorf("Send says %q; s6-svc says %q, which has %q", ours, s6msg, part)
		}
	}
}

func mustMkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

func mustWrite(t *testing.T, file, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add("s6-svc\x00-h\x00/run/service/haproxy")
	f.Add("s6-svc\x00-2\x00--\x00svc")
	f.Add("/bin/s6-svc\x00-h\x00-")
	f.Add("s6-svc\x00-wr\x00-h\x00svc")
	f.Fuzz(func(t *testing.T, line string) {
		argv := strings.Split(line, "\x00")
		s, ok := Parse(argv)
		if !ok {
			return
		}
		if s.Cmd != 'h' && s.Cmd != '2' || s.Dir == "" {
			t.Fatalf("Parse(%q) = %+v", argv, s)
		}
		// The directory is the last argument and is taken whole.
		if s.Dir != argv[len(argv)-1] {
			t.Fatalf("Parse(%q) = %+v: not the last argument", argv, s)
		}
	})
}
