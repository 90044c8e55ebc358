package handler

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSocketGuard: a run whose file would move or drop the stats socket
// the running HAProxy answers on (a typo in --haproxy-socket, a handler
// line without it) is refused, exit 2, naming the socket and the cause;
// render --force moves it; a socket nothing answers on is no reason to
// refuse (issue 20).
func TestSocketGuard(t *testing.T) {
	dir, err := os.MkdirTemp("", "shb") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	nodes, out, sock := filepath.Join(dir, "nodes"), filepath.Join(dir, "haproxy.cfg"), filepath.Join(dir, "admin.sock")
	if err := os.MkdirAll(nodes, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := Config{NodesDir: nodes, Output: out, Roles: []string{"backend"}, HAProxySocket: sock,
		CheckTimeout: time.Second, ReloadTimeout: time.Second, LockTimeout: time.Second,
		RPCTimeout: time.Second, ReconcileTimeout: time.Second, Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}}
	render := func(cfg Config, opt RenderOptions) (int, string) {
		var stderr bytes.Buffer
		cfg.Stderr = &stderr
		return ExitCode(Render(context.Background(), cfg, opt)), stderr.String()
	}
	if code, log := render(cfg, RenderOptions{}); code != 0 {
		t.Fatalf("first render exited %d\n%s", code, log)
	}
	ln, err := net.Listen("unix", sock) // HAProxy answering on its admin socket
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	installed, _ := os.ReadFile(out)

	typo := cfg
	typo.HAProxySocket = filepath.Join(dir, "admn.sock")
	typo.Sources = map[string]string{"haproxy-socket": "env SERF_HB_HAPROXY_SOCKET"}
	code, log := render(typo, RenderOptions{})
	if code != ExitUsage || !strings.Contains(log, "declares stats socket "+sock+" and the running HAProxy answers there") ||
		!strings.Contains(log, "SERF_HB_HAPROXY_SOCKET="+typo.HAProxySocket+" disagrees") {
		t.Errorf("typo: exit %d, want %d naming both sockets\n%s", code, ExitUsage, log)
	}
	none := cfg
	none.HAProxySocket = ""
	code, log = render(none, RenderOptions{})
	if code != ExitUsage || !strings.Contains(log, "the new file has no stats socket (this run has no --haproxy-socket)") {
		t.Errorf("no socket: exit %d, want %d saying the socket would be dropped\n%s", code, ExitUsage, log)
	}
	if now, _ := os.ReadFile(out); !bytes.Equal(now, installed) {
		t.Fatalf("a refused run changed %s", out)
	}
	if code, log := render(typo, RenderOptions{Force: true}); code != 0 {
		t.Errorf("render --force exited %d, want the move made\n%s", code, log)
	}
	ln.Close()
	if code, log := render(cfg, RenderOptions{}); code != 0 {
		t.Errorf("back to the first socket, nothing answering on the typo: exit %d\n%s", code, log)
	}
}
