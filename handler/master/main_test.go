package master

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/serf-hb/serf-hb/internal/haproxytest"
)

// Test addresses: this package's own loopback /24, so that test packages
// running in parallel never collide. 192.0.2.77 (TEST-NET-1) is an address
// no host has: HAProxy fails to bind it locally, and no packet is sent.
const (
	frontendIP = "127.0.22.1"
	backendIP  = "127.0.22.2"
	missingIP  = "192.0.2.77"
)

// backend starts a real HTTP server on backendIP answering name, and
// returns its address.
func backend(t testing.TB, name string) string {
	t.Helper()
	ln, err := net.Listen("tcp", backendIP+":0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, name)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// freePort returns a TCP port free on ip a moment ago.
func freePort(t testing.TB, ip string) string {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// lab is a real HAProxy in master-worker mode: a frontend on frontendIP
// routing to one of two real backends, its master CLI on a unix socket.
type lab struct {
	haproxy  string // the binary: $HAPROXY_BIN, or haproxy from $PATH
	dir      string
	cfg      string
	sock     string
	frontend string
	backends map[string]string // name -> address
}

func newLab(t testing.TB) *lab {
	t.Helper()
	bin := haproxytest.Require(t, "handler/master")
	dir := haproxytest.ShortDir(t)
	l := &lab{
		haproxy:  bin,
		dir:      dir,
		cfg:      filepath.Join(dir, "haproxy.cfg"),
		sock:     filepath.Join(dir, "m.sock"),
		frontend: freePort(t, frontendIP),
		backends: map[string]string{"one": backend(t, "one"), "two": backend(t, "two")},
	}
	return l
}

// install writes a configuration routing to backend name, with an extra
// bind if bind is not empty, the way serf-hb installs one: atomically.
func (l *lab) install(t testing.TB, name, bind string) {
	t.Helper()
	cfg := fmt.Sprintf(`global
    nbthread 1
    stats socket %s mode 600 level admin
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind %s
    default_backend be
backend be
    server %s %s
`, filepath.Join(l.dir, "stats.sock"), l.frontend, name, l.backends[name])
	if bind != "" {
		cfg = strings.Replace(cfg, "default_backend", "bind "+bind+"\n    default_backend", 1)
	}
	tmp := l.cfg + ".tmp"
	if err := os.WriteFile(tmp, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(l.haproxy, "-c", "-f", tmp).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c refuses the test's configuration: %v: %s", err, out)
	}
	if err := os.Rename(tmp, l.cfg); err != nil {
		t.Fatal(err)
	}
}

// start runs HAProxy -W -db -S SOCK -f CFG with its stderr in a regular
// file, and waits until its master shows a worker.
func (l *lab) start(t testing.TB) *exec.Cmd {
	t.Helper()
	stderr, err := os.Create(filepath.Join(l.dir, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	cmd := exec.Command(l.haproxy, "-W", "-db", "-S", l.sock, "-f", l.cfg)
	cmd.Stdout, cmd.Stderr = stderr, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { haproxytest.StopGroup(cmd) })
	l.waitWorker(t)
	return cmd
}

func (l *lab) waitWorker(t testing.TB) {
	t.Helper()
	c := &Client{Addr: l.sock, Timeout: time.Second}
	haproxytest.WaitFor(t, 5*time.Second, "haproxy's master to show a worker", func() bool {
		p, err := c.ShowProc(context.Background())
		_, ok := p.Current()
		return err == nil && ok
	})
}

// get asks the frontend for a page on a new connection and returns the
// name of the backend that answered.
func (l *lab) get() (string, error) {
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://" + l.frontend + "/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", resp.Status, b)
	}
	return string(b), err
}

// serves fails the test unless every one of a few requests through the
// frontend reaches backend name.
func (l *lab) serves(t testing.TB, name string) {
	t.Helper()
	for range 5 {
		got, err := l.get()
		if err != nil || got != name {
			t.Fatalf("GET through the frontend: %q, %v; want backend %q", got, err, name)
		}
	}
}

// switchesTo waits until requests through the frontend reach backend
// name: an old worker may still accept a connection or two after the new
// one started.
func (l *lab) switchesTo(t testing.TB, name string) {
	t.Helper()
	haproxytest.WaitFor(t, 3*time.Second, "the frontend to route to "+name, func() bool {
		got, err := l.get()
		return err == nil && got == name
	})
	l.serves(t, name)
}
