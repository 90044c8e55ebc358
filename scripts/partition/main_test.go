package partition

import (
	"errors"
	"os"
	"testing"

	"github.com/serf-hb/serf-hb/scripts/internal/harness"
)

func TestMain(m *testing.M) {
	os.Exit(harness.Main(m, harness.Suite{
		Name:  "partition",
		Needs: []string{"serf", "haproxy", "s6-svscan", "s6-svscanctl", "s6-svc", "ip", "nft", "env"},
		// The backends' HTTP server: it prints "listening" once bound,
		// which the test waits for, since it cannot dial into the
		// backends' namespace.
		Build: []string{harness.Module + "/scripts/e2e/backend"},
		Setup: func(string) error {
			if os.Geteuid() != 0 {
				return errors.New("creating network namespaces needs root; hint: run the test as root")
			}
			return nil
		},
	}))
}
