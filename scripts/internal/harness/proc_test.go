package harness

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// alive reports whether pid runs (a zombie does not count).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	return err == nil && !strings.Contains(string(b), ") Z ")
}

func TestProcKillsItsGroup(t *testing.T) {
	for _, session := range []bool{false, true} {
		t.Run("session="+strconv.FormatBool(session), func(t *testing.T) {
			dir := t.TempDir()
			child := filepath.Join(dir, "child.pid")
			log := filepath.Join(dir, "log")
			// The shell starts a child that outlives it unless its group is
			// killed, as a serf agent's handler runs would.
			p, err := Start(t, Cmd{Name: "sh", Log: log, Session: session,
				Argv: []string{"sh", "-c", "sleep 300 & echo $! > " + child + "; echo started; wait"}})
			if err != nil {
				t.Fatal(err)
			}
			var pid int
			Eventually(t, "the child's PID", 10*time.Second, 10*time.Millisecond, func() error {
				b, err := os.ReadFile(child)
				if err == nil {
					pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
				}
				return err
			})
			if pgid, err := syscall.Getpgid(pid); err != nil || pgid != p.PID() {
				t.Fatalf("child's group %d (%v), want the leader's %d", pgid, err, p.PID())
			}
			if p.Exited() {
				t.Fatal("exited early")
			}
			p.Kill()
			if !p.Exited() {
				t.Error("the leader is still running")
			}
			Eventually(t, "the child to die", 5*time.Second, 10*time.Millisecond, func() error {
				if alive(pid) {
					return os.ErrExist
				}
				return nil
			})
			if got := Tail(log); got != "started\n" {
				t.Errorf("log = %q", got)
			}
		})
	}
}

func TestProcStop(t *testing.T) {
	t.Run("exits of the signal", func(t *testing.T) {
		p, err := Start(t, Cmd{Name: "sleep", Argv: []string{"sleep", "300"}})
		if err != nil {
			t.Fatal(err)
		}
		if !p.Stop(syscall.SIGTERM, 5*time.Second) || !p.Exited() {
			t.Fatal("sleep did not exit of SIGTERM")
		}
	})
	t.Run("killed when it ignores the signal", func(t *testing.T) {
		p, err := Start(t, Cmd{Name: "sh", Argv: []string{"sh", "-c", "trap '' TERM; echo; while :; do sleep 1; done"}})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond) // let the trap be set
		if p.Stop(syscall.SIGTERM, 200*time.Millisecond) {
			t.Fatal("Stop reported an exit of a signal that is ignored")
		}
		if !p.Exited() {
			t.Fatal("still running after Stop")
		}
	})
}

func TestStartErrors(t *testing.T) {
	if _, err := Start(t, Cmd{Name: "nothing"}); err == nil {
		t.Error("no error for an empty command")
	}
	if _, err := Start(t, Cmd{Name: "missing", Argv: []string{"/no/such/program"}}); err == nil || !strings.Contains(err.Error(), "start missing") {
		t.Errorf("err = %v", err)
	}
}

func TestRun(t *testing.T) {
	out, err := Run(5*time.Second, nil, "sh", "-c", "echo out; echo err >&2")
	if err != nil || out != "out\n" {
		t.Fatalf("out %q, err %v", out, err)
	}
	_, err = Run(5*time.Second, nil, "sh", "-c", "echo why >&2; exit 3")
	if err == nil || !strings.Contains(err.Error(), "exit status 3: why") {
		t.Fatalf("err = %v", err)
	}
	start := time.Now()
	if _, err := Run(100*time.Millisecond, nil, "sleep", "30"); err == nil || time.Since(start) > 10*time.Second {
		t.Fatalf("err %v after %v", err, time.Since(start))
	}
}

func TestCleanEnv(t *testing.T) {
	t.Setenv("SERF_RPC_ADDR", "127.0.0.1:1")
	t.Setenv("SERF_HB_NODES_DIR", "/nowhere")
	t.Setenv("HARNESS_KEEP", "1")
	env := strings.Join(CleanEnv(), "\n")
	if strings.Contains(env, "SERF_") || !strings.Contains(env, "HARNESS_KEEP=1") {
		t.Errorf("CleanEnv() = %s", env)
	}
}
