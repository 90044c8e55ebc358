package labtest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/serf-hb/serf-hb/scripts/internal/harness"
)

// Loopback layout: 127.0.23.0/24 belongs to this package. The balancer
// (serf agent, HAProxy's frontend, stats page and TCP admin socket) is on
// .1, backend bN on .1N; every one uses the lab's ports where it can (serf
// 7946 and 7373, backends 3000), the frontend 8080 instead of 80 so that
// the test needs no privilege.
const (
	balIP    = "127.0.23.1"
	frontend = balIP + ":8080"
	balRPC   = balIP + ":7373"
)

func TestMain(m *testing.M) {
	os.Exit(harness.Main(m, harness.Suite{
		Name: "labtest",
		// HAProxy is $HAPROXY_BIN, or haproxy from $PATH, which Main puts
		// first on the services' PATH: the image's scripts run it by name.
		Needs: []string{"serf", "haproxy", "s6-svscan", "s6-svscanctl", "s6-svc", "s6-svstat", "s6-envdir", "env"},
	}))
}

// lab is the balancer "container" and its backends.
type lab struct {
	t                      *testing.T
	dir, bin, scan, envDir string
	logDir                 string
	cfg, nodes, hbLog      string
	svscan                 *harness.Proc
	backends               map[string]*backend
	client                 *http.Client
}

type backend struct {
	name, ip string
	agent    *harness.Proc
	http     *http.Server
}

// markVar marks every process the lab starts (s6 passes its environment
// to the services, with-contenv adds to it, serf passes it on to serf-hb):
// the cleanup kills what carries the mark, whatever PIDs were reused.
const markVar = "LABTEST_RUN_DIR"

// examples is the directory of the image's files.
func examples(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(wd, "..", "..", "examples", "lab", "ha")
}

func newLab(t *testing.T) *lab {
	t.Helper()
	dir := t.TempDir()
	l := &lab{
		t: t, dir: dir,
		bin:      filepath.Join(dir, "bin"),
		scan:     filepath.Join(dir, "scan"),
		envDir:   filepath.Join(dir, "container_environment"),
		logDir:   filepath.Join(dir, "logs"),
		cfg:      filepath.Join(dir, "haproxy.cfg"),
		nodes:    filepath.Join(dir, "nodes"),
		hbLog:    filepath.Join(dir, "logs", "serf.log"),
		backends: map[string]*backend{},
		client: &http.Client{
			// A new connection per request: each one is routed afresh.
			Transport: &http.Transport{DisableKeepAlives: true},
			Timeout:   2 * time.Second,
		},
	}
	t.Cleanup(l.shutdown)
	for _, d := range []string{l.bin, l.scan, l.envDir, l.logDir, l.nodes} {
		l.must(os.MkdirAll(d, 0o755))
	}
	src := examples(t)
	template := filepath.Join(src, "config", "haproxy.cfg.tmpl")

	// The container's environment, as s6-overlay v2 keeps it: one file
	// per variable, the value verbatim. Everything differing from the
	// lab's defaults is here, and only here: the services' own
	// environment holds PATH and the mark, nothing else.
	env := map[string]string{
		"ROLE":                "balancer",
		"SERF_NODE":           "ha",
		"SERF_BIND":           balIP,
		"SERF_JOIN":           balIP,
		"SERF_RPC_ADDR":       balRPC,
		"SERF_HB_NODES_DIR":   l.nodes,
		"SERF_HB_TEMPLATE":    template,
		"SERF_HB_LOG_FILE":    l.hbLog,
		"HAPROXY_CFG":         l.cfg,
		"HA_SERVICE":          filepath.Join(l.scan, "ha"),
		"HAPROXY_MASTER_SOCK": filepath.Join(dir, "master.sock"),
		"HAPROXY_ADMIN_SOCK":  filepath.Join(dir, "admin.sock"),
		"HAPROXY_ADMIN_TCP":   balIP + ":9999",
		"HAPROXY_STATS_BIND":  balIP + ":1936",
		"HAPROXY_BIND":        frontend,
	}
	for k, v := range env {
		l.must(os.WriteFile(filepath.Join(l.envDir, k), []byte(v), 0o644))
	}
	// s6-overlay v2's with-contenv (not packaged in Debian) adds that
	// environment and runs its arguments; this stand-in does the same
	// with the same tool.
	l.must(os.WriteFile(filepath.Join(l.bin, "with-contenv"),
		[]byte("#!/bin/sh\nexec s6-envdir -fn -- "+harness.Quote(l.envDir)+" \"$@\"\n"), 0o755))

	// The Dockerfile's `RUN mkdir /nodes && serf-hb render ...`: HAProxy's
	// first configuration, from the template with no backend, checked.
	if out, err := l.cmd(30*time.Second, []string{"SERF_HB_NODES_DIR=" + l.nodes, "SERF_HB_OUTPUT=" + l.cfg},
		harness.Bin("serf-hb"), "render", "--template", template, "--check", harness.HAProxyCheck(), "--reload", ""); err != nil {
		l.fatalf("first render, as the Dockerfile does it: %v\n%s", err, out)
	}

	// /etc/services.d as s6-overlay copies it to /var/run/s6/services:
	// the shipped files, linked, not copied and edited.
	for _, svc := range []string{"ha", "serf"} {
		l.must(os.MkdirAll(filepath.Join(l.scan, svc), 0o755))
		for _, f := range []string{"run", "down-signal"} {
			l.must(os.Symlink(filepath.Join(src, "services", svc, f), filepath.Join(l.scan, svc, f)))
		}
	}
	l.svscan = l.start("s6-svscan", "svscan.log", true, "env", "--default-signal", "s6-svscan", l.scan)
	// After Start's cleanup, so that it runs first: s6-svscan stops its
	// services before its group is killed.
	t.Cleanup(l.stopScan)
	l.waitFor("HAProxy's frontend to answer 503 (no backend yet)", 15*time.Second, func() error {
		_, code, err := l.get(frontend)
		if err == nil && code != http.StatusServiceUnavailable {
			err = fmt.Errorf("status %d", code)
		}
		return err
	})
	l.waitFor("the balancer's serf agent", 15*time.Second, func() error {
		_, err := l.member(balRPC, "ha")
		return err
	})
	return l
}

// stopScan stops s6-svscan and its services.
func (l *lab) stopScan() {
	l.cmd(5*time.Second, nil, "s6-svscanctl", "-t", l.scan)
	if !l.svscan.Wait(10 * time.Second) {
		l.t.Logf("s6-svscan did not stop within 10s of s6-svscanctl -t; killing it")
		l.svscan.Kill()
	}
}

// shutdown stops everything the lab started, by PID, even when the test
// failed half-way: the backends' HTTP servers, then anything left carrying
// the mark. (Start's cleanups have killed the backends' agents, and
// stopScan s6-svscan and its services, before.)
func (l *lab) shutdown() {
	for _, b := range l.backends {
		b.http.Close()
	}
	harness.KillAll(l.t, "leftover processes of "+l.dir, func() []int { return harness.MarkedPIDs(markVar + "=" + l.dir) })
}

// --- processes ----------------------------------------------------------

// env is the environment of everything the lab starts: PATH (the lab's
// with-contenv and the test's serf-hb first) and the mark, nothing of the
// caller's SERF_* or HAPROXY_* variables.
func (l *lab) env() []string {
	path := strings.Join([]string{l.bin, filepath.Dir(harness.Bin("serf-hb")), os.Getenv("PATH")}, string(os.PathListSeparator))
	return []string{"PATH=" + path, markVar + "=" + l.dir}
}

// start starts argv with its output appended to logName, in a session of
// its own with setsid (s6-svscan, as under an init system), else in a
// process group of its own.
func (l *lab) start(name, logName string, setsid bool, argv ...string) *harness.Proc {
	l.t.Helper()
	p, err := harness.Start(l.t, harness.Cmd{Name: name, Argv: argv, Dir: l.dir, Env: l.env(),
		Log: filepath.Join(l.logDir, logName), Session: setsid})
	l.must(err)
	return p
}

// cmd runs a short command with the lab's environment plus extra, and
// returns its output.
func (l *lab) cmd(timeout time.Duration, extra []string, argv ...string) (string, error) {
	return harness.Run(timeout, append(l.env(), extra...), argv...)
}

// --- waiting and failing -------------------------------------------------

// waitFor polls fn every 50 ms until it returns nil, for at most d.
func (l *lab) waitFor(what string, d time.Duration, fn func() error) {
	l.t.Helper()
	if err := harness.Wait(what, d, 50*time.Millisecond, fn); err != nil {
		l.fatalf("%v", err)
	}
}

// fatalf fails the test with the tail of every log the lab wrote.
func (l *lab) fatalf(format string, args ...any) {
	l.t.Helper()
	var b strings.Builder
	files, _ := filepath.Glob(filepath.Join(l.logDir, "*"))
	for _, f := range files {
		fmt.Fprintf(&b, "\n----- %s -----\n%s", filepath.Base(f), harness.Tail(f))
	}
	if cfg, err := os.ReadFile(l.cfg); err == nil {
		fmt.Fprintf(&b, "\n----- server lines of %s -----\n%s", l.cfg, serverLines(cfg))
	}
	l.t.Fatalf("%s\n%s", fmt.Sprintf(format, args...), b.String())
}

func (l *lab) must(err error) {
	l.t.Helper()
	if err != nil {
		l.fatalf("%v", err)
	}
}

// --- backends -------------------------------------------------------------

// startBackend starts an HTTP server answering its name on IP:3000 (the
// lab's webapp port), then a serf agent like the lab's webapp image runs:
// role=backend, joining the balancer.
func (l *lab) startBackend(name, ip string) {
	l.t.Helper()
	ln, err := net.Listen("tcp", ip+":3000")
	l.must(err)
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			io.WriteString(w, name+"\n")
		}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	go srv.Serve(ln)
	b := &backend{name: name, ip: ip, http: srv}
	l.backends[name] = b
	b.agent = l.start("serf agent "+name, name+".serf.log", false,
		harness.Bin("serf"), "agent", "-node", name, "-bind", ip, "-rpc-addr", ip+":7373",
		"-tag", "role=backend", "-join", balIP)
}

// leave makes name's agent leave the cluster gracefully (SIGINT); its HTTP
// server keeps answering.
func (l *lab) leave(name string) {
	l.t.Helper()
	if !l.backends[name].agent.Stop(syscall.SIGINT, 20*time.Second) {
		l.fatalf("serf agent %s did not exit within 20s of SIGINT", name)
	}
}

// --- what the lab looks like ----------------------------------------------

// get sends one request to addr and returns the body's first line.
func (l *lab) get(addr string) (string, int, error) {
	resp, err := l.client.Get("http://" + addr + "/")
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return strings.TrimSpace(string(body)), resp.StatusCode, err
}

// answeredBy sends n requests through the frontend and returns the sorted
// set of backends that answered; any other outcome is an error.
func (l *lab) answeredBy(n int) ([]string, error) {
	seen := map[string]bool{}
	for i := 0; i < n; i++ {
		name, code, err := l.get(frontend)
		if err != nil {
			return nil, err
		}
		if code != http.StatusOK {
			return nil, fmt.Errorf("frontend answered %d", code)
		}
		seen[name] = true
	}
	names := make([]string, 0, len(seen))
	for name := range seen {
		names = append(names, name)
	}
	sort.Strings(names)
	return names, nil
}

// serverLines returns the server lines of a rendered configuration.
func serverLines(cfg []byte) string {
	var lines []string
	for _, line := range strings.Split(string(cfg), "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == "server" {
			lines = append(lines, strings.Join(f, " "))
		}
	}
	return strings.Join(lines, "\n")
}

// member asks the agent at rpc about one member.
func (l *lab) member(rpc, name string) (harness.Member, error) {
	ms, err := harness.Members(harness.Bin("serf"), "members", "-rpc-addr", rpc, "-format", "json")
	if err != nil {
		return harness.Member{}, err
	}
	for _, m := range ms {
		if m.Name == name {
			return m, nil
		}
	}
	return harness.Member{}, fmt.Errorf("agent %s does not know member %s", rpc, name)
}

// haPID returns the PID of the ha service's process, which s6 supervises.
func (l *lab) haPID() int {
	l.t.Helper()
	out, err := l.cmd(5*time.Second, nil, "s6-svstat", "-o", "up,pid", filepath.Join(l.scan, "ha"))
	f := strings.Fields(out)
	if err != nil || len(f) != 2 || f[0] != "true" {
		l.fatalf("s6-svstat ha: %v %q", err, out)
	}
	pid, _ := strconv.Atoi(f[1])
	return pid
}

// --- the test -------------------------------------------------------------

func TestLabImage(t *testing.T) {
	l := newLab(t)

	// ROLE reached the agent only through the container environment.
	if m, err := l.member(balRPC, "ha"); err != nil || m.Tags["role"] != "balancer" {
		l.fatalf("balancer member: %+v %v, want tag role=balancer from ROLE", m, err)
	}
	master := l.haPID()

	l.startBackend("b1", "127.0.23.11")
	l.startBackend("b2", "127.0.23.12")
	want := "server b1 127.0.23.11:3000 check\nserver b2 127.0.23.12:3000 check"
	l.waitFor("b1 and b2 in the configuration and answering through HAProxy", 20*time.Second, func() error {
		cfg, err := os.ReadFile(l.cfg)
		if err != nil {
			return err
		}
		if got := serverLines(cfg); got != want {
			return fmt.Errorf("server lines %q, want %q", got, want)
		}
		names, err := l.answeredBy(6)
		if err != nil {
			return err
		}
		if strings.Join(names, ",") != "b1,b2" {
			return fmt.Errorf("answered by %v, want b1 and b2", names)
		}
		return nil
	})
	// The registry is the lab's: one file per backend, "NAME ADDR" first.
	for name, ip := range map[string]string{"b1": "127.0.23.11", "b2": "127.0.23.12"} {
		b, err := os.ReadFile(filepath.Join(l.nodes, name))
		if first, _, _ := strings.Cut(string(b), "\n"); err != nil || first != name+" "+ip {
			l.fatalf("registry file %s: %q %v, want first line %q", name, first, err, name+" "+ip)
		}
	}
	// Reloaded, not restarted: the supervised master is the same process.
	if pid := l.haPID(); pid != master {
		l.fatalf("ha service PID %d, was %d before the joins: HAProxy was restarted, not reloaded", pid, master)
	}
	if log, _ := os.ReadFile(l.hbLog); !bytes.Contains(log, []byte("result=reloaded")) {
		l.fatalf("serf-hb's log (SERF_HB_LOG_FILE) holds no reloaded run:\n%s", log)
	}

	l.leave("b2")
	l.waitFor("b2 gone from the configuration and from HAProxy's answers", 20*time.Second, func() error {
		cfg, err := os.ReadFile(l.cfg)
		if err != nil {
			return err
		}
		if got, want := serverLines(cfg), "server b1 127.0.23.11:3000 check"; got != want {
			return fmt.Errorf("server lines %q, want %q", got, want)
		}
		names, err := l.answeredBy(6)
		if err != nil {
			return err
		}
		if strings.Join(names, ",") != "b1" {
			return fmt.Errorf("answered by %v, want b1 only", names)
		}
		return nil
	})
	// b2 still serves: HAProxy dropped it because the configuration did,
	// not because a health check failed.
	if name, code, err := l.get("127.0.23.12:3000"); err != nil || code != http.StatusOK || name != "b2" {
		l.fatalf("b2's own HTTP server: %q %d %v", name, code, err)
	}
	if _, err := os.Stat(filepath.Join(l.nodes, "b2")); !errors.Is(err, os.ErrNotExist) {
		l.fatalf("registry file b2 after its leave: %v", err)
	}
	if pid := l.haPID(); pid != master {
		l.fatalf("ha service PID %d, was %d: HAProxy was restarted, not reloaded", pid, master)
	}

	// down-signal: s6 stops the agent with SIGINT, so it leaves the
	// cluster (b1 sees "left", not "failed"), and HAProxy with SIGUSR1.
	for _, svc := range []string{"serf", "ha"} {
		if out, err := l.cmd(15*time.Second, nil, "s6-svc", "-wD", "-T", "10000", "-d", filepath.Join(l.scan, svc)); err != nil {
			l.fatalf("s6-svc -d %s: %v %s", svc, err, out)
		}
	}
	l.waitFor("b1's agent to see the balancer leave", 10*time.Second, func() error {
		m, err := l.member("127.0.23.11:7373", "ha")
		if err == nil && m.Status != "left" {
			err = fmt.Errorf("status %s", m.Status)
		}
		return err
	})
	if _, _, err := l.get(frontend); err == nil {
		l.fatalf("the frontend still answers after s6-svc -d ha")
	}
}
