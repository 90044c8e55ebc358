package rolling

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/serf-hb/serf-hb/scripts/internal/harness"
)

// haproxyBin is the haproxy binary the suite runs: $HAPROXY_BIN, or
// haproxy from $PATH.
var haproxyBin string

func TestMain(m *testing.M) {
	os.Exit(harness.Main(m, harness.Suite{
		Name:  "rolling",
		Needs: []string{"serf"},
		Build: []string{harness.Module + "/scripts/e2e/backend"},
		Setup: func(string) error {
			name := os.Getenv("HAPROXY_BIN")
			if name == "" {
				name = "haproxy"
			}
			p, err := exec.LookPath(name)
			if err != nil {
				// Never skip: a machine without it must not pass silently.
				return fmt.Errorf("%s not found; hint: apt-get install -y haproxy, or set HAPROXY_BIN", name)
			}
			haproxyBin, err = filepath.Abs(p)
			return err
		},
	}))
}
