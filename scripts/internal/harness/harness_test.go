package harness

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckNeeds(t *testing.T) {
	t.Setenv(SerfEnv, "")
	if err := checkNeeds([]string{"sh"}); err != nil {
		t.Fatal(err)
	}
	err := checkNeeds([]string{"sh", "no-such-program-1", "s6-no-such", "nft-no-such", "no-such-program-2"})
	if err == nil {
		t.Fatal("no error")
	}
	// One line naming every missing program and what to install.
	msg := err.Error()
	if strings.Contains(msg, "\n") || !strings.Contains(msg, "no-such-program-1, s6-no-such, nft-no-such, no-such-program-2 not found on $PATH") ||
		!strings.Contains(msg, "apt-get install -y no-such-program-1 s6 nft-no-such no-such-program-2") {
		t.Errorf("message = %q", msg)
	}
}

func TestSerf(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "serf-fake")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\necho 0.8.2-dev\necho 'Agent Protocol: 5'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Run("SERF_BIN names it", func(t *testing.T) {
		t.Setenv(SerfEnv, fake)
		p, err := Serf()
		if err != nil || p != fake {
			t.Fatalf("Serf() = %q, %v", p, err)
		}
		if got := SerfVersion(p); got != "0.8.2-dev; no module version (not built by go install)" {
			t.Errorf("SerfVersion = %q", got)
		}
	})
	t.Run("a command name on $PATH", func(t *testing.T) {
		t.Setenv("PATH", dir)
		t.Setenv(SerfEnv, "serf-fake")
		if p, err := Serf(); err != nil || p != fake {
			t.Fatalf("Serf() = %q, %v", p, err)
		}
	})
	t.Run("SERF_BIN missing fails with one line", func(t *testing.T) {
		t.Setenv(SerfEnv, filepath.Join(dir, "none"))
		err := checkNeeds([]string{"serf"})
		if err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), SerfEnv+"="+filepath.Join(dir, "none")) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("no serf on $PATH", func(t *testing.T) {
		t.Setenv("PATH", t.TempDir())
		t.Setenv(SerfEnv, "")
		err := checkNeeds([]string{"serf"})
		if err == nil || !strings.Contains(err.Error(), "serf not found on $PATH; hint: apt-get install") {
			t.Fatalf("err = %v", err)
		}
	})
}
