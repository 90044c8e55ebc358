package partition

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/serf-hb/serf-hb/internal/haproxytest"
	"testing"
)

// serfHB is the serf-hb binary built once for the package; haproxyBin is
// the HAProxy it runs ($HAPROXY_BIN, or haproxy from $PATH).
var serfHB, haproxyBin string

// required are the programs the test drives, with the Debian package
// that brings each.
var required = []struct{ cmd, pkg string }{
	{"serf", "serf"},
	{"s6-svscan", "s6"},
	{"s6-svscanctl", "s6"},
	{"s6-svc", "s6"},
	{"ip", "iproute2"},
	{"nft", "nftables"},
}

// The test binary doubles as the backends' HTTP server: started with
// backendVar set, it serves instead of testing (see serveBackend).
const (
	backendVar = "HBPART_BACKEND"
	listenVar  = "HBPART_LISTEN"
)

func TestMain(m *testing.M) {
	if name := os.Getenv(backendVar); name != "" {
		if err := serveBackend(name, os.Getenv(listenVar)); err != nil {
			fmt.Fprintf(os.Stderr, "backend %s: %v\n", name, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	var missing, pkgs []string
	for _, r := range required {
		if _, err := exec.LookPath(r.cmd); err != nil {
			missing = append(missing, r.cmd)
			if !contains(pkgs, r.pkg) {
				pkgs = append(pkgs, r.pkg)
			}
		}
	}
	if _, err := haproxytest.Path(); err != nil {
		if os.Getenv(haproxytest.Env) != "" {
			fmt.Fprintf(os.Stderr, "partition: %v\n", err)
			return 1
		}
		missing, pkgs = append(missing, "haproxy"), append(pkgs, "haproxy")
	}
	if len(missing) > 0 {
		// Never skip: a machine without them must not pass silently.
		fmt.Fprintf(os.Stderr, "partition: %s not found in $PATH; hint: apt-get install -y %s\n",
			strings.Join(missing, ", "), strings.Join(pkgs, " "))
		return 1
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "partition: creating network namespaces needs root; hint: run the test as root")
		return 1
	}
	dir, err := os.MkdirTemp("", "serf-hb-partition-bin-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "partition: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if haproxyBin, err = haproxytest.Setup("partition", filepath.Join(dir, "haproxy-path")); err != nil {
		fmt.Fprintf(os.Stderr, "partition: %v\n", err)
		return 1
	}
	serfHB = filepath.Join(dir, "serf-hb")
	if err := goBuild(serfHB, "github.com/serf-hb/serf-hb"); err != nil {
		fmt.Fprintf(os.Stderr, "partition: %v\n", err)
		return 1
	}
	return m.Run()
}

// goBuild builds pkg into out with the go command that runs this test.
func goBuild(out, pkg string) error {
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(gobin); err != nil {
		if gobin, err = exec.LookPath("go"); err != nil {
			return fmt.Errorf("build %s: go command not found", pkg)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if b, err := exec.CommandContext(ctx, gobin, "build", "-o", out, pkg).CombinedOutput(); err != nil {
		return fmt.Errorf("build %s: %v: %s", pkg, err, b)
	}
	return nil
}

// serveBackend answers every request with name until SIGTERM or SIGINT.
// It prints "listening" once bound: the test runs it in another network
// namespace, where it cannot dial it, and waits for that line instead.
func serveBackend(name, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	body := []byte(name + "\n")
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			w.Write(body)
		}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	fmt.Printf("listening %s %s\n", name, ln.Addr())
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
