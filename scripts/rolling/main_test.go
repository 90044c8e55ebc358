package rolling

import (
	"os"
	"testing"

	"github.com/serf-hb/serf-hb/scripts/internal/harness"
)

func TestMain(m *testing.M) {
	os.Exit(harness.Main(m, harness.Suite{
		Name:  "rolling",
		Needs: []string{"serf", "haproxy"},
		Build: []string{harness.Module + "/scripts/e2e/backend"},
	}))
}
