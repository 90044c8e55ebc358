package handler

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/serf-hb/serf-hb/handler/master"
)

// TestRefusedReloadWithoutLKGRestoresWhatRuns: HAProxy runs a file that
// serf-hb did not verify (no OUTPUT.lkg yet); a change HAProxy refuses at
// reload still ends with what HAProxy runs installed, because that file
// was kept as the last known good before it was replaced (issue 20,
// bug 7). Real HAProxy in master-worker mode.
func TestRefusedReloadWithoutLKGRestoresWhatRuns(t *testing.T) {
	if _, err := exec.LookPath("haproxy"); err != nil {
		t.Fatal("haproxy not found on $PATH; hint: apt-get install -y haproxy")
	}
	dir, err := os.MkdirTemp("", "shb") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	nodes, out, tmpl := filepath.Join(dir, "nodes"), filepath.Join(dir, "haproxy.cfg"), filepath.Join(dir, "t.tmpl")
	msock := filepath.Join(dir, "m.sock")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	// Two nodes make a file HAProxy refuses (a bad keyword): haproxy -c
	// would catch it, which is why no check is configured here.
	src := fmt.Sprintf(`global
    nbthread 1
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:%d
    default_backend be
backend be
{%% for n in nodes %%}
    server {{ n.name }} {{ n.addr }}:9
{%% endfor %%}
{%% if nodes|length > 1 %%}
    no-such-keyword
{%% endif %%}
`, port)
	for _, f := range []struct{ path, data string }{{tmpl, src}, {filepath.Join(nodes, "w1"), "w1 127.0.0.1\n"}} {
		if err := os.MkdirAll(filepath.Dir(f.path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f.path, []byte(f.data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := Config{NodesDir: nodes, Output: out, Template: tmpl, Roles: []string{"backend"},
		CheckTimeout: 5 * time.Second, ReloadTimeout: 5 * time.Second, LockTimeout: 5 * time.Second,
		RPCTimeout: time.Second, ReconcileTimeout: time.Second, Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}}
	// The first file, rendered before the master socket was configured.
	if err := Render(context.Background(), cfg, RenderOptions{}); err != nil {
		t.Fatalf("first render: %v", err)
	}
	running, _ := os.ReadFile(out)

	cmd := exec.Command("haproxy", "-W", "-db", "-S", msock, "-f", out)
	var hout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &hout, &hout
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	})
	mc := master.Client{Addr: msock, Timeout: time.Second}
	for i := 0; ; i++ {
		p, err := mc.ShowProc(context.Background())
		if _, ok := p.Current(); err == nil && ok {
			break
		}
		if i == 100 {
			t.Fatalf("haproxy's master shows no worker after 5 s: %v\n%s", err, hout.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	if err := os.WriteFile(filepath.Join(nodes, "w2"), []byte("w2 127.0.0.2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cfg.MasterSocket, cfg.Stderr = msock, &stderr
	err = Render(context.Background(), cfg, RenderOptions{})
	if code := ExitCode(err); code != ExitReload {
		t.Fatalf("render exited %d, want %d (reload refused)\n%s", code, ExitReload, stderr.String())
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, running) {
		t.Errorf("%s holds the refused file; want the one HAProxy runs restored\n%s", out, stderr.String())
	}
	if lkg, _ := os.ReadFile(out + ".lkg"); !bytes.Equal(lkg, running) {
		t.Errorf("%s.lkg is not the file HAProxy runs", out)
	}
	if rej, _ := os.ReadFile(out + ".rejected"); !strings.Contains(string(rej), "no-such-keyword") {
		t.Errorf("%s.rejected does not hold the refused file", out)
	}
	if !strings.Contains(stderr.String(), "result=rolled-back") {
		t.Errorf("summary line does not say rolled-back:\n%s", stderr.String())
	}
}

// TestRollbackWithNothingToRestore: a refused reload with no last known
// good reports reload-failed, not rolled-back: nothing was rolled back.
func TestRollbackWithNothingToRestore(t *testing.T) {
	dir := t.TempDir()
	r := &run{cfg: Config{Output: filepath.Join(dir, "haproxy.cfg")}, rep: newReport("render")}
	if err := os.WriteFile(r.cfg.Output, []byte("refused\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err, restored := r.rollback(&master.ReloadError{})
	if restored || !strings.Contains(err.Error(), "no last known good to restore") {
		t.Fatalf("rollback = %v, restored %v; want nothing restored, said so", err, restored)
	}
}

// TestStagedLKG: the last known good a live run writes beside its commit
// replaces the old one only when committed; a run that ends before that
// leaves the old one and no temp file.
func TestStagedLKG(t *testing.T) {
	for _, keep := range []bool{true, false} {
		t.Run(fmt.Sprintf("commit=%v", keep), func(t *testing.T) {
			dir := t.TempDir()
			r := &run{cfg: Config{Output: filepath.Join(dir, "haproxy.cfg")}}
			if err := os.WriteFile(r.lkgPath(), []byte("old\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			s := r.stageLastKnownGood(context.Background(), []byte("installed\n"), []byte("new\n"))
			want := "old\n"
			if keep {
				if err := s.commit(); err != nil {
					t.Fatal(err)
				}
				want = "new\n"
			}
			s.cleanup()
			if got, _ := os.ReadFile(r.lkgPath()); string(got) != want {
				t.Errorf("%s = %q, want %q", r.lkgPath(), got, want)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 1 {
				t.Errorf("left in %s: %v, want only haproxy.cfg.lkg", dir, entries)
			}
			var none *stagedLKG
			if err := none.commit(); err != nil {
				t.Errorf("commit of no staged file: %v", err)
			}
			none.cleanup()
		})
	}
}
