package partition

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/serf-hb/serf-hb/scripts/internal/harness"
)

// agentConfig is every serf agent's configuration file. The local profile
// (memberlist's timings for a loopback network) and a 1 s reconnect
// interval keep the test short: Serf still takes 20-25 s to declare the
// backends failed across the cut (30-40 s with the default lan profile,
// see docs/reliability.md), and finds them again within about 1 s of the
// link coming back instead of 30 s.
const agentConfig = `{"profile": "local", "reconnect_interval": "1s"}`

// cluster is one balancer (in net.lb) and its backends (in net.be).
type cluster struct {
	t   *testing.T
	net *network
	dir string

	scan, agentConf             string
	cfgPath, hbConfig, nodesDir string
	adminSock, frontSock        string
	logDir, hbLog, serfLog      string
	svscan                      *harness.Proc
	backends                    []*backend
	client                      *http.Client
}

type backend struct {
	name, ip    string
	agent, http *harness.Proc
}

// newCluster starts the balancer: s6-svscan in the balancer's namespace,
// supervising HAProxy (master-worker) and a serf agent whose handler is
// serf-hb, with --min-nodes minNodes when it is above 0.
func newCluster(t *testing.T, minNodes int) *cluster {
	t.Helper()
	n := newNetwork(t)
	dir := t.TempDir()
	// Unix socket paths must fit in 108 bytes: t.TempDir's may not.
	sockDir, err := os.MkdirTemp("", "hbp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	c := &cluster{
		t: t, net: n, dir: dir,
		scan:      filepath.Join(dir, "scan"),
		agentConf: filepath.Join(dir, "agent.json"),
		cfgPath:   filepath.Join(dir, "haproxy.cfg"),
		hbConfig:  filepath.Join(dir, "serf-hb.json"),
		nodesDir:  filepath.Join(dir, "nodes"),
		adminSock: filepath.Join(sockDir, "admin.sock"),
		frontSock: filepath.Join(sockDir, "front.sock"),
		logDir:    filepath.Join(dir, "logs"),
	}
	c.hbLog = filepath.Join(c.logDir, "serf-hb.log")
	c.serfLog = filepath.Join(c.logDir, "serf-lb.log")
	c.client = &http.Client{
		// A new connection per request: a kept-alive one would stick to
		// one HAProxy worker across reloads.
		Transport: &http.Transport{
			DisableKeepAlives: true,
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", c.frontSock)
			},
		},
		Timeout: 3 * time.Second,
	}
	for _, d := range []string{"nodes", "logs", "scan/haproxy", "scan/serf"} {
		c.must(os.MkdirAll(filepath.Join(dir, d), 0o755))
	}
	c.must(os.WriteFile(c.agentConf, []byte(agentConfig), 0o644))
	tmpl, err := os.ReadFile(filepath.Join("testdata", "haproxy.cfg.tmpl"))
	c.must(err)
	tmplPath := filepath.Join(dir, "haproxy.cfg.tmpl")
	filled := strings.NewReplacer("@FRONT_SOCK@", c.frontSock, "@ADMIN_SOCK@", c.adminSock).Replace(string(tmpl))
	c.must(os.WriteFile(tmplPath, []byte(filled), 0o644))
	// The README's recommended balancer, as scripts/e2e runs it; serf-hb
	// talks to its agent on the default RPC address, 127.0.0.1:7373 of the
	// balancer's namespace.
	cfg := map[string]any{
		"nodes-dir": c.nodesDir,
		"template":  tmplPath,
		"output":    c.cfgPath,
		"check":     harness.HAProxyCheck(),
		"reload":    "s6-svc -2 " + filepath.Join(c.scan, "haproxy"),
		"log-file":  c.hbLog,
		"role":      "backend",
		"reconcile": true,
	}
	if minNodes > 0 {
		cfg["min-nodes"] = minNodes
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	c.must(err)
	c.must(os.WriteFile(c.hbConfig, b, 0o644))
	// HAProxy needs a configuration before it starts: the empty registry.
	if out, err := harness.Run(30*time.Second, nil, harness.Bin("serf-hb"), "--config", c.hbConfig, "--reload", "", "render"); err != nil {
		c.fatalf("initial render: %v %s", err, out)
	}

	handler := harness.Quote(harness.Bin("serf-hb")) + " --config " + harness.Quote(c.hbConfig)
	c.service("haproxy", "exec "+harness.Quote(harness.Bin("haproxy"))+" -W -db -f "+harness.Quote(c.cfgPath), filepath.Join(c.logDir, "haproxy.log"))
	c.service("serf", "exec "+harness.Quote(harness.Bin("serf"))+" agent -node lb -bind "+lbIP+" -config-file "+harness.Quote(c.agentConf)+
		" -tag role=balancer -event-handler "+
		harness.Quote("member-join,member-leave,member-failed,member-update,member-reap="+handler), c.serfLog)
	c.svscan, err = harness.Start(t, harness.Cmd{Name: "s6-svscan", Log: filepath.Join(c.logDir, "svscan.log"), Session: true,
		Argv: n.exec(n.lb, "env", "--default-signal", "s6-svscan", c.scan)})
	c.must(err)
	// After Start's own cleanup, so that it runs first: s6-svscan stops
	// its services before anything is killed.
	t.Cleanup(c.shutdown)
	c.waitFor("HAProxy's stats socket", 15*time.Second, func() error {
		_, err := c.haproxyServers()
		return err
	})
	c.waitFor("the balancer's serf agent", 15*time.Second, func() error {
		_, err := c.members()
		return err
	})
	return c
}

// service writes an s6 run script: cmd with its output appended to log.
func (c *cluster) service(name, cmd, log string) {
	script := "#!/bin/sh\nexec >>" + harness.Quote(log) + " 2>&1\n" + cmd + "\n"
	c.must(os.WriteFile(filepath.Join(c.scan, name, "run"), []byte(script), 0o755))
}

// startBackends starts n backends, web1..webN, in the backends' namespace:
// an HTTP server (this test binary, see serveBackend) and a serf agent that
// joins the balancer.
func (c *cluster) startBackends(n int) {
	c.t.Helper()
	for i := range n {
		b := &backend{name: fmt.Sprintf("web%d", i+1), ip: backendIP(i)}
		c.backends = append(c.backends, b)
		httpLog := filepath.Join(c.logDir, b.name+".http.log")
		var err error
		b.http, err = harness.Start(c.t, harness.Cmd{Name: b.name + " http", Log: httpLog, Session: true,
			Argv: c.net.exec(c.net.be, harness.Bin("backend"), "-name", b.name, "-listen", net.JoinHostPort(b.ip, strconv.Itoa(httpPort)))})
		c.must(err)
		c.waitFor(b.name+" to listen", 20*time.Second, func() error {
			if data, _ := os.ReadFile(httpLog); !bytes.Contains(data, []byte("listening")) {
				return fmt.Errorf("no \"listening\" line in %s", httpLog)
			}
			return nil
		})
		b.agent, err = harness.Start(c.t, harness.Cmd{Name: b.name + " serf", Log: filepath.Join(c.logDir, b.name+".serf.log"), Session: true,
			Argv: c.net.exec(c.net.be, harness.Bin("serf"), "agent", "-node", b.name, "-bind", b.ip,
				"-rpc-addr", net.JoinHostPort(b.ip, "7373"), "-config-file", c.agentConf,
				"-tag", "role=backend", "-tag", "port="+strconv.Itoa(httpPort), "-join", lbIP)})
		c.must(err)
	}
}

// shutdown stops every process, by PID: the backends, then s6-svscan and
// its services. The namespaces' removal (registered earlier, so run
// later) kills anything left in them.
func (c *cluster) shutdown() {
	for _, b := range c.backends {
		for _, p := range []*harness.Proc{b.agent, b.http} {
			if p != nil {
				p.Kill()
			}
		}
	}
	if c.svscan != nil {
		harness.Run(5*time.Second, nil, "s6-svscanctl", "-t", c.scan)
		if !c.svscan.Wait(10 * time.Second) {
			c.t.Logf("s6-svscan did not stop within 10s, killing it")
			c.svscan.Kill()
		}
	}
}

// fatalf fails the test with the tail of every log file.
func (c *cluster) fatalf(format string, args ...any) {
	c.t.Helper()
	var b strings.Builder
	files, _ := filepath.Glob(filepath.Join(c.logDir, "*"))
	for _, f := range files {
		fmt.Fprintf(&b, "\n----- %s -----\n%s", filepath.Base(f), harness.Tail(f))
	}
	c.t.Fatalf("%s\n%s", fmt.Sprintf(format, args...), b.String())
}

func (c *cluster) must(err error) {
	c.t.Helper()
	if err != nil {
		c.fatalf("%v", err)
	}
}

// waitFor polls fn every 100 ms until it returns nil, for at most d.
func (c *cluster) waitFor(what string, d time.Duration, fn func() error) time.Duration {
	c.t.Helper()
	start := time.Now()
	if err := harness.Wait(what, d, 100*time.Millisecond, fn); err != nil {
		c.fatalf("%v", err)
	}
	return time.Since(start)
}

// --- the views ---------------------------------------------------------------

// servers maps a server name to its address:port.
type servers = harness.Servers

// want is every backend the cluster started.
func (c *cluster) want() servers {
	s := servers{}
	for _, b := range c.backends {
		s[b.name] = net.JoinHostPort(b.ip, strconv.Itoa(httpPort))
	}
	return s
}

// members asks the balancer's agent (inside its namespace) for every
// member it knows.
func (c *cluster) members() ([]harness.Member, error) {
	return harness.Members(c.net.exec(c.net.lb, harness.Bin("serf"), "members", "-format", "json")...)
}

// serfBackends is Serf's view: the alive role=backend members.
func (c *cluster) serfBackends() (servers, error) {
	ms, err := c.members()
	if err != nil {
		return nil, err
	}
	return harness.AliveBackends(ms)
}

// statuses maps each backend's name to its status as the balancer's agent
// sees it.
func (c *cluster) statuses() (map[string]string, error) {
	ms, err := c.members()
	if err != nil {
		return nil, err
	}
	st := map[string]string{}
	for _, m := range ms {
		if m.Tags["role"] == "backend" {
			st[m.Name] = m.Status
		}
	}
	return st, nil
}

// registry is serf-hb's registry, read from its files.
func (c *cluster) registry() (servers, error) { return harness.RegistryServers(c.nodesDir) }

// configServers reads the server lines of the installed configuration.
func (c *cluster) configServers() (servers, error) { return harness.ConfigServers(c.cfgPath) }

// haproxyState is HAProxy's own view (show servers state): the servers of
// backend nodes, and those it routes to (UP, not in maintenance).
type haproxyState struct{ configured, routed servers }

func (c *cluster) haproxyServers() (haproxyState, error) {
	st, err := harness.ServersState(c.adminSock, "nodes")
	if err != nil {
		return haproxyState{}, err
	}
	var h haproxyState
	h.configured, h.routed = harness.Configured(st)
	return h, nil
}

// get sends one request through the frontend and returns the name of the
// backend that answered.
func (c *cluster) get() (string, int, error) { return harness.Get(c.client, "http://balancer/") }

// frontendView is what clients see over n requests: who answered, how many
// got a 503 (no server), how many failed otherwise.
type frontendView struct{ harness.Frontend }

func (c *cluster) probe(n int) frontendView { return frontendView{harness.Probe(n, c.get)} }

// answeredBy reports whether exactly the servers of want answered, and
// nothing failed (with want empty: every request got a 503).
func (v frontendView) answeredBy(want servers) bool {
	if v.Bad > 0 || len(v.Seen) != len(want) || (len(want) > 0 && v.N503 > 0) || (len(want) == 0 && v.N503 == 0) {
		return false
	}
	for name := range v.Seen {
		if _, ok := want[name]; !ok {
			return false
		}
	}
	return true
}

// observation is every view at one moment.
type observation struct {
	serf, registry, config servers
	haproxy                haproxyState
	front                  frontendView
	errs                   []string
}

func (o observation) String() string {
	names := o.front.Names()
	return fmt.Sprintf("serf alive role=backend: %v\nregistry:                %v\nconfig server lines:     %v\nhaproxy configured:      %v\nhaproxy routes to:       %v\nfrontend answered by:    %v (503: %d, failed: %d %s)\nerrors: %v",
		o.serf, o.registry, o.config, o.haproxy.configured, o.haproxy.routed, names, o.front.N503, o.front.Bad, o.front.LastErr, o.errs)
}

func (c *cluster) observe(n int) observation {
	var o observation
	var err error
	note := func(err error) {
		if err != nil {
			o.errs = append(o.errs, err.Error())
		}
	}
	o.serf, err = c.serfBackends()
	note(err)
	o.registry, err = c.registry()
	note(err)
	o.config, err = c.configServers()
	note(err)
	o.haproxy, err = c.haproxyServers()
	note(err)
	// Round robin: 3 rounds reach every routed server.
	o.front = c.probe(3*n + 3)
	return o
}

// converge waits up to d until every view equals want: Serf's alive
// backends, the registry, the config, HAProxy's servers and the
// backends that answer through the frontend. It returns how long that
// took.
func (c *cluster) converge(want servers, d time.Duration) time.Duration {
	c.t.Helper()
	var o observation
	return c.waitFor(fmt.Sprintf("every view to equal %v", want), d, func() error {
		o = c.observe(len(want))
		if len(o.errs) == 0 && o.serf.Equal(want) && o.registry.Equal(want) && o.config.Equal(want) &&
			o.haproxy.configured.Equal(want) && o.haproxy.routed.Equal(want) && o.front.answeredBy(want) {
			return nil
		}
		return fmt.Errorf("views disagree:\n%v", o)
	})
}

// --- logs --------------------------------------------------------------------

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// hbRuns parses serf-hb's summary lines (slog text: key=value, values
// quoted when needed) written after offset.
func (c *cluster) hbRuns(offset int64) []map[string]string {
	b, err := os.ReadFile(c.hbLog)
	if err != nil || offset > int64(len(b)) {
		return nil
	}
	var runs []map[string]string
	for _, line := range strings.Split(string(b[offset:]), "\n") {
		if line != "" {
			runs = append(runs, harness.ParseLogfmt(line))
		}
	}
	return runs
}

// scriptErrors returns the serf agent's "Error invoking script" lines
// written after offset: Serf's only trace of a handler's exit status.
func (c *cluster) scriptErrors(offset int64) []string {
	b, err := os.ReadFile(c.serfLog)
	if err != nil || offset > int64(len(b)) {
		return nil
	}
	var lines []string
	for _, line := range strings.Split(string(b[offset:]), "\n") {
		if strings.Contains(line, "Error invoking script") {
			lines = append(lines, strings.TrimSpace(line))
		}
	}
	return lines
}

// --- load --------------------------------------------------------------------

// result is one request of the load.
type result struct {
	at   time.Time
	code int // 0: no HTTP answer
	err  string
}

// load sends one request through the frontend every 10 ms, on a new
// connection each, until finish (5 minutes or 30,000 requests at most).
type load struct {
	stop, done chan struct{}
	results    []result
	sent       atomic.Int64 // len(results), for a wait while it runs
	n503       atomic.Int64 // the 503s among them
}

func (c *cluster) startLoad() *load {
	l := &load{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		deadline := time.Now().Add(5 * time.Minute)
		for range 30000 {
			select {
			case <-l.stop:
				return
			case <-tick.C:
			}
			if time.Now().After(deadline) {
				return
			}
			r := result{at: time.Now()}
			_, code, err := c.get()
			r.code = code
			if err != nil {
				r.err = err.Error()
			}
			l.results = append(l.results, r)
			l.sent.Add(1)
			if err == nil && code == http.StatusServiceUnavailable {
				l.n503.Add(1)
			}
		}
	}()
	return l
}

// waitSent waits until the load has sent n requests.
func (c *cluster) waitSent(l *load, n int64) {
	c.t.Helper()
	c.waitFor(fmt.Sprintf("the load to send %d requests", n), 30*time.Second, func() error {
		if got := l.sent.Load(); got < n {
			return fmt.Errorf("%d sent", got)
		}
		return nil
	})
}

// wait503 waits until the load has got a 503 since it had n: the views
// agree that no server is published, and the load must see it before the
// state changes again (converge returns at the first probe that sees it,
// maybe before the load's next request).
func (c *cluster) wait503(l *load, n int64) {
	c.t.Helper()
	c.waitFor("the load to get a 503", 10*time.Second, func() error {
		if got := l.n503.Load(); got <= n {
			return fmt.Errorf("%d 503s", got)
		}
		return nil
	})
}

// finish stops the load and returns every request it sent.
func (l *load) finish() []result {
	close(l.stop)
	<-l.done
	return l.results
}

// tally counts requests sent in [from, to): answered 200, 503, and failed
// otherwise (no answer, or another status), with the first such failure.
type tally struct {
	ok, n503, failed int
	firstFailure     string
}

func (t tally) String() string {
	s := fmt.Sprintf("%d requests: %d ok, %d got 503, %d failed", t.ok+t.n503+t.failed, t.ok, t.n503, t.failed)
	if t.firstFailure != "" {
		s += " (first: " + t.firstFailure + ")"
	}
	return s
}

func count(rs []result, from, to time.Time) tally {
	var t tally
	for _, r := range rs {
		if r.at.Before(from) || !r.at.Before(to) {
			continue
		}
		switch {
		case r.err == "" && r.code == http.StatusOK:
			t.ok++
		case r.err == "" && r.code == http.StatusServiceUnavailable:
			t.n503++
		default:
			t.failed++
			if t.firstFailure == "" {
				t.firstFailure = fmt.Sprintf("%s: status %d %s", r.at.Format("15:04:05.000"), r.code, r.err)
			}
		}
	}
	return t
}
