package harness

import (
	"context"
	"debug/buildinfo"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// SerfEnv names the environment variable that chooses the serf binary the
// suites drive (agents, `serf members`, `serf tags`, `serf event`): a path
// or a command name. Unset, it is `serf` from $PATH (Debian's 0.9.4).
// scripts/test.sh runs the story and sync tests a second time with it set
// to upstream v0.10.2.
const SerfEnv = "SERF_BIN"

// Serf returns the serf binary to drive, as an absolute path.
func Serf() (string, error) {
	name := os.Getenv(SerfEnv)
	if name == "" {
		name = "serf"
	}
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv(SerfEnv) != "" {
			return "", fmt.Errorf("%s=%s: %v; hint: unset it to use serf from $PATH, or build it: GOFLAGS=-mod=mod GOBIN=DIR go install github.com/hashicorp/serf/cmd/serf@v0.10.2", SerfEnv, name, err)
		}
		return "", errors.New("serf not found on $PATH; hint: apt-get install -y serf (scripts/test.sh installs it)")
	}
	return filepath.Abs(p)
}

// SerfVersion describes a serf binary. `serf version` alone cannot tell
// Debian's 0.9.4 from upstream's 0.10.2: both print "0.8.2-dev" (upstream
// never bumped cmd/serf's version string). A binary built by go install
// carries its module version in its build information; Debian's, built in
// GOPATH mode, carries none.
func SerfVersion(path string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "version").Output()
	first, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	if err != nil {
		first = "serf version: " + err.Error()
	}
	mod := "no module version (not built by go install)"
	if bi, err := buildinfo.ReadFile(path); err == nil && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		mod = bi.Main.Path + " " + bi.Main.Version + ", " + bi.GoVersion
	}
	return first + "; " + mod
}
