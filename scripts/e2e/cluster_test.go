package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/serf-hb/serf-hb/scripts/internal/harness"
)

// Loopback layout: 127.0.1.0/24 belongs to this package. Each cluster
// takes a block of host numbers starting at its base: the balancer (serf
// agent, HAProxy frontend and stats page) on base, backends on the next
// ones, a new number for every backend started, so a rejoin gets a new
// address. Bases: TestStory 1, TestReloadUnderLoad 50 and 100,
// TestLatency 150 and 200. Each role has its own port.
const (
	netPrefix    = "127.0.1."
	blockSize    = 40
	frontendPort = 28080
	statsPort    = 28081
	serfPort     = 27946
	rpcPort      = 27373
	httpPort     = 23000
)

// reloadMethod is how HAProxy is run under s6 and reloaded.
type reloadMethod struct {
	name    string // for logs and subtest names
	service string // run script directory under scripts/e2e/services
	svc     string // s6-svc option serf-hb's --reload sends
}

var (
	// masterWorker: haproxy -W -db, reloaded by SIGUSR2 (s6-svc -2).
	masterWorker = reloadMethod{"master-worker", "haproxy-master-worker", "-2"}
	// labSF: the lab's run script, restarted by s6-svc -h, starting
	// haproxy -sf OLDPID.
	labSF = reloadMethod{"lab-sf", "haproxy-lab", "-h"}
	// defaultMethod is what scripts/demo.sh uses and what the load test
	// holds to zero failed requests: it failed none in docs/e2e.md's
	// measurements, where the lab's method failed some and routed a
	// change about 1 s later.
	defaultMethod = masterWorker
)

// cluster is one balancer (s6-svscan, HAProxy, serf agent + serf-hb) and
// its backends.
type cluster struct {
	t      *testing.T
	method reloadMethod
	dir    string
	base   int // host number of the balancer
	next   int // next free host number for a backend

	balIP                 string
	scan                  string
	svscan                *harness.Proc
	cfgPath, tmplPath     string
	hbConfig, nodesDir    string
	adminSock, masterSock string
	logDir, hbLog         string

	backends map[string]*backend
	stepName string
	logs     *harness.Logs // what each log got since the step began
	client   *http.Client
}

type backend struct {
	name, ip     string
	agent, http  *harness.Proc
	agentStarted time.Time // just before its serf agent was started
}

func (b *backend) rpc() string { return fmt.Sprintf("%s:%d", b.ip, rpcPort) }

// serfRPC is the RPC address of a backend's agent.
func (c *cluster) serfRPC(name string) string { return c.backend(name).rpc() }

// repoDir is the module root: this package lives in scripts/e2e.
func repoDir(t testing.TB) string {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(wd, "..", "..")
}

// newCluster starts s6-svscan with HAProxy (run and reloaded as m says)
// and the balancer's serf agent on 127.0.1.base, and registers its
// shutdown.
func newCluster(t *testing.T, m reloadMethod, base int) *cluster {
	t.Helper()
	return newClusterWith(t, m, base, false)
}

// newClusterWith is newCluster; with timeReloads, serf-hb's reload command
// first appends the time to reloads.log (for TestLatency).
func newClusterWith(t *testing.T, m reloadMethod, base int, timeReloads bool) *cluster {
	t.Helper()
	dir := t.TempDir()
	c := &cluster{
		t: t, method: m, dir: dir, base: base, next: base + 1,
		balIP:      netPrefix + strconv.Itoa(base),
		scan:       filepath.Join(dir, "scan"),
		cfgPath:    filepath.Join(dir, "haproxy", "haproxy.cfg"),
		tmplPath:   filepath.Join(dir, "haproxy", "haproxy.cfg.tmpl"),
		hbConfig:   filepath.Join(dir, "serf-hb.json"),
		nodesDir:   filepath.Join(dir, "nodes"),
		adminSock:  filepath.Join(dir, "haproxy", "admin.sock"),
		masterSock: filepath.Join(dir, "haproxy", "master.sock"),
		logDir:     filepath.Join(dir, "logs"),
		backends:   map[string]*backend{},
		client: &http.Client{
			// A new connection per request, as the load test does: a
			// kept-alive connection would stick to one HAProxy process.
			Transport: &http.Transport{DisableKeepAlives: true},
			Timeout:   3 * time.Second,
		},
	}
	c.hbLog = filepath.Join(c.logDir, "serf-hb.log")
	c.logs = &harness.Logs{Dir: c.logDir, Noise: ipcNoise}
	t.Cleanup(c.killLeftovers)
	c.stepName = "start " + m.name + " cluster"
	for _, d := range []string{"haproxy", "nodes", "logs", "backends", "scan/haproxy", "scan/serf"} {
		c.must(os.MkdirAll(filepath.Join(dir, d), 0o755))
	}
	repo := repoDir(t)
	tmpl, err := os.ReadFile(filepath.Join(repo, "scripts", "e2e", "haproxy.cfg.tmpl"))
	c.must(err)
	filled := strings.NewReplacer(
		"@FRONTEND@", c.frontend(),
		"@STATS@", c.stats(),
		"@ADMIN_SOCK@", c.adminSock,
	).Replace(string(tmpl))
	c.must(os.WriteFile(c.tmplPath, []byte(filled), 0o644))
	reload := "s6-svc " + m.svc + " " + filepath.Join(c.scan, "haproxy")
	if timeReloads {
		reload = "sh -c " + harness.Quote("date +%s.%N >>"+harness.Quote(c.reloadLog())+"; exec "+reload)
	}
	// The README's recommended balancer: --reconcile syncs the registry
	// with the agent's member list after every member event, which heals
	// edges Serf never delivers (a member that left while the agent was
	// down).
	cfg, err := json.MarshalIndent(map[string]any{
		"nodes-dir": c.nodesDir,
		"template":  c.tmplPath,
		"output":    c.cfgPath,
		"check":     harness.HAProxyCheck(),
		"reload":    reload,
		"log-file":  c.hbLog,
		"role":      "backend",
		"rpc-addr":  c.balRPC(),
		"reconcile": true,
	}, "", "  ")
	c.must(err)
	c.must(os.WriteFile(c.hbConfig, cfg, 0o644))

	// HAProxy needs a configuration before it starts: render the empty
	// registry, with no reload (nothing runs yet).
	if out, err := harness.Run(30*time.Second, nil, harness.Bin("serf-hb"), "--config", c.hbConfig, "--reload", "", "render"); err != nil {
		c.fatalf("initial render: %v %s", err, out)
	}

	c.installService(m.service, "haproxy", map[string]string{
		"CFG":         c.cfgPath,
		"MASTER_SOCK": c.masterSock,
		"PIDFILE":     filepath.Join(dir, "haproxy", "haproxy.pid"),
		"PIDLOG":      filepath.Join(dir, "haproxy", "haproxy.pids"),
		"LOG":         filepath.Join(c.logDir, "haproxy.log"),
	})
	c.installService("serf-balancer", "serf", map[string]string{
		"SERF":     harness.Bin("serf"),
		"NODE":     "lb",
		"BIND":     fmt.Sprintf("%s:%d", c.balIP, serfPort),
		"RPC":      c.balRPC(),
		"SNAPSHOT": filepath.Join(dir, "serf.snapshot"),
		"HANDLER":  harness.Quote(harness.Bin("serf-hb")) + " --config " + harness.Quote(c.hbConfig),
		"LOG":      filepath.Join(c.logDir, "serf-balancer.log"),
	})
	c.svscan = c.start("s6-svscan", dir, filepath.Join(c.logDir, "svscan.log"), true,
		"env", "--default-signal", "s6-svscan", c.scan)
	// Cleanups run last first: this one, before the group kill Start
	// registered, stops s6-svscan and its services the way s6 means.
	t.Cleanup(c.stopS6)
	c.waitFor("HAProxy's stats socket", 15*time.Second, func() error {
		_, err := c.haproxyServers()
		return err
	})
	c.waitFor("the balancer's serf agent", 15*time.Second, func() error {
		_, err := c.serfBackends()
		return err
	})
	return c
}

// installService copies a run script directory from scripts/e2e/services
// into the scan directory as name, with a conf file of shell assignments.
func (c *cluster) installService(src, name string, conf map[string]string) {
	from := filepath.Join(repoDir(c.t), "scripts", "e2e", "services", src)
	to := filepath.Join(c.scan, name)
	ents, err := os.ReadDir(from)
	c.must(err)
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		c.must(err)
		mode := os.FileMode(0o644)
		if e.Name() == "run" || e.Name() == "finish" {
			mode = 0o755
		}
		c.must(os.WriteFile(filepath.Join(to, e.Name()), b, mode))
	}
	keys := make([]string, 0, len(conf))
	for k := range conf {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s\n", k, harness.Quote(conf[k]))
	}
	c.must(os.WriteFile(filepath.Join(to, "conf"), []byte(b.String()), 0o644))
}

func (c *cluster) reloadLog() string { return filepath.Join(c.dir, "reloads.log") }

// reloadsSince returns the reload times logged (timeReloads) after t.
func (c *cluster) reloadsSince(t time.Time) []time.Time {
	b, _ := os.ReadFile(c.reloadLog())
	var list []time.Time
	for _, f := range strings.Fields(string(b)) {
		sec, frac, _ := strings.Cut(f, ".")
		s, err1 := strconv.ParseInt(sec, 10, 64)
		ns, err2 := strconv.ParseInt((frac + "000000000")[:9], 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		if at := time.Unix(s, ns); at.After(t) {
			list = append(list, at)
		}
	}
	return list
}

func (c *cluster) frontend() string { return fmt.Sprintf("%s:%d", c.balIP, frontendPort) }
func (c *cluster) stats() string    { return fmt.Sprintf("%s:%d", c.balIP, statsPort) }
func (c *cluster) balRPC() string   { return fmt.Sprintf("%s:%d", c.balIP, rpcPort) }

// stopS6 stops s6-svscan and every service it supervises. The backends,
// started later, were killed (their process groups) before it runs.
func (c *cluster) stopS6() {
	harness.Run(5*time.Second, nil, "s6-svscanctl", "-t", c.scan)
	if !c.svscan.Wait(10 * time.Second) {
		c.t.Logf("s6-svscan did not stop in 10s, killing it")
		c.svscan.Kill()
	}
}

// killLeftovers runs last, even when the test failed half-way: it kills
// anything left that carries the cluster's mark (HAProxy processes
// orphaned by the lab's run script, services s6 did not stop).
func (c *cluster) killLeftovers() {
	harness.KillAll(c.t, "leftover processes of "+c.dir, func() []int { return harness.MarkedPIDs(markVar + "=" + c.dir) })
}

// step runs one step of a scenario: on failure the logs written during the
// step are printed (fatalf).
func (c *cluster) step(name string, fn func()) {
	c.t.Helper()
	c.stepName = name
	c.logs.Mark()
	start := time.Now()
	fn()
	c.t.Logf("step %q: ok in %v", name, time.Since(start).Round(time.Millisecond))
}

// stepLogs returns what every log file got since the step started.
func (c *cluster) stepLogs() string { return c.logs.Since() }

// ipcNoise: every serf command the test runs makes the agent log lines.
var ipcNoise = regexp.MustCompile(`(?m)^.*agent\.ipc: (Accepted client|Closed client|Client closed).*\n`)

func (c *cluster) fatalf(format string, args ...any) {
	c.t.Helper()
	c.t.Fatalf("[%s] step %q: %s\n%s", c.method.name, c.stepName, fmt.Sprintf(format, args...), c.stepLogs())
}

func (c *cluster) must(err error) {
	c.t.Helper()
	if err != nil {
		c.fatalf("%v", err)
	}
}

// waitFor polls fn every 50 ms until it returns nil, for at most d.
func (c *cluster) waitFor(what string, d time.Duration, fn func() error) {
	c.t.Helper()
	if err := harness.Wait(what, d, 50*time.Millisecond, fn); err != nil {
		c.fatalf("%v", err)
	}
}

// --- backends ---------------------------------------------------------

type backendOpts struct {
	role string // default "backend"
	join string // address to join; default the balancer
}

// startBackend starts an HTTP server answering name and then a serf agent
// named name, both on a new loopback address.
func (c *cluster) startBackend(name string, o backendOpts) *backend {
	c.t.Helper()
	if c.next >= c.base+blockSize {
		c.fatalf("no loopback address left in 127.0.1.%d-%d", c.base, c.base+blockSize-1)
	}
	if o.role == "" {
		o.role = "backend"
	}
	if o.join == "" {
		o.join = fmt.Sprintf("%s:%d", c.balIP, serfPort)
	}
	b := &backend{name: name, ip: netPrefix + strconv.Itoa(c.next)}
	c.next++
	key := "b" + b.ip // the name may hold any character
	bdir := filepath.Join(c.dir, "backends", key)
	c.must(os.MkdirAll(bdir, 0o755))
	b.http = c.start("backend "+name, bdir, filepath.Join(c.logDir, key+".http.log"), false,
		harness.Bin("backend"), "-name", name, "-listen", fmt.Sprintf("%s:%d", b.ip, httpPort))
	c.backends[name] = b
	c.waitFor("backend "+name+" to listen", 20*time.Second, func() error {
		if b.http.Exited() {
			return harness.Permanent(fmt.Errorf("its HTTP server exited"))
		}
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("%s:%d", b.ip, httpPort), time.Second)
		if err == nil {
			conn.Close()
		}
		return err
	})
	b.agentStarted = time.Now()
	b.agent = c.startAgent(b, o, bdir, key)
	return b
}

func (c *cluster) startAgent(b *backend, o backendOpts, bdir, key string) *harness.Proc {
	c.t.Helper()
	return c.start("serf agent "+b.name, bdir, filepath.Join(c.logDir, key+".serf.log"), false,
		harness.Bin("serf"), "agent", "-node", b.name,
		"-bind", fmt.Sprintf("%s:%d", b.ip, serfPort), "-rpc-addr", b.rpc(),
		"-tag", "role="+o.role, "-tag", fmt.Sprintf("port=%d", httpPort),
		"-join", o.join)
}

// leave makes name's agent leave gracefully (SIGINT). Its HTTP server
// keeps running until stopHTTP: drain first, then stop serving.
func (c *cluster) leave(name string) {
	c.t.Helper()
	b := c.backend(name)
	if !b.agent.Stop(syscall.SIGINT, 30*time.Second) {
		c.fatalf("serf agent %s did not exit within 30s of SIGINT", name)
	}
}

func (c *cluster) stopHTTP(name string) {
	c.backend(name).http.Stop(syscall.SIGTERM, 5*time.Second)
}

// kill9 kills name's agent and HTTP server with SIGKILL.
func (c *cluster) kill9(name string) {
	b := c.backend(name)
	b.agent.Stop(syscall.SIGKILL, 5*time.Second)
	b.http.Stop(syscall.SIGKILL, 5*time.Second)
}

// forget drops a stopped backend from the cluster's list, so its name can
// be started again.
func (c *cluster) forget(name string) {
	b := c.backend(name)
	if !b.agent.Exited() || !b.http.Exited() {
		c.fatalf("forget %s: still running", name)
	}
	delete(c.backends, name)
}

func (c *cluster) backend(name string) *backend {
	c.t.Helper()
	b, ok := c.backends[name]
	if !ok {
		c.fatalf("no backend %q", name)
	}
	return b
}

// setRole changes name's role tag with serf tags.
func (c *cluster) setRole(name, role string) {
	c.t.Helper()
	if out, err := harness.Run(10*time.Second, nil, harness.Bin("serf"), "tags", "-rpc-addr", c.backend(name).rpc(), "-set", "role="+role); err != nil {
		c.fatalf("%v %s", err, out)
	}
}

// --- the five views -------------------------------------------------------

// servers maps a server name to its address:port.
type servers = harness.Servers

// haproxyName is HAProxy's server name charset: serf-hb refuses to
// register other names, so they are never expected in the config.
var haproxyName = regexp.MustCompile(`^[A-Za-z0-9_:-][A-Za-z0-9_.:-]*$`)

// members asks the balancer's agent for every member it knows.
func (c *cluster) members() ([]harness.Member, error) {
	return harness.Members(harness.Bin("serf"), "members", "-rpc-addr", c.balRPC(), "-format", "json")
}

// serfBackends is Serf's view: alive members with role=backend whose names
// HAProxy accepts, as the balancer's agent sees them.
func (c *cluster) serfBackends() (servers, error) {
	ms, err := c.members()
	if err != nil {
		return nil, err
	}
	s, err := harness.AliveBackends(ms)
	for name := range s {
		if !haproxyName.MatchString(name) {
			delete(s, name)
		}
	}
	return s, err
}

func (c *cluster) memberStatus(name string) string {
	ms, _ := c.members()
	for _, m := range ms {
		if m.Name == name {
			return m.Status
		}
	}
	return ""
}

// configServers reads the server lines of the rendered configuration.
func (c *cluster) configServers() (servers, error) { return harness.ConfigServers(c.cfgPath) }

// haproxyState is HAProxy's own view from show servers state: every
// configured server of backend nodes, and the ones it routes to (running,
// not in maintenance).
type haproxyState struct {
	configured, routed servers
}

func (c *cluster) haproxyServers() (haproxyState, error) {
	st, err := harness.ServersState(c.adminSock, "nodes")
	if err != nil {
		return haproxyState{}, err
	}
	var h haproxyState
	h.configured, h.routed = harness.Configured(st)
	return h, nil
}

// admin sends one command to HAProxy's stats socket.
func (c *cluster) admin(cmd string) (string, error) { return harness.HAProxyCommand(c.adminSock, cmd) }

func (c *cluster) frontendGet() (string, int, error) {
	return harness.Get(c.client, "http://"+c.frontend()+"/")
}

func (c *cluster) probeFrontend(n int) harness.Frontend { return harness.Probe(n, c.frontendGet) }

// observation is the five views at one moment.
type observation struct {
	serf, config servers
	haproxy      haproxyState
	front        harness.Frontend
	errs         []string
}

func (o observation) String() string {
	return fmt.Sprintf("serf alive role=backend: %v\nconfig server lines:     %v\nhaproxy configured:      %v\nhaproxy routes to:       %v\nfrontend answered by:    {%s} (503: %d, failed: %d %s)\nerrors: %v",
		o.serf, o.config, o.haproxy.configured, o.haproxy.routed, strings.Join(o.front.Names(), ","), o.front.N503, o.front.Bad, o.front.LastErr, o.errs)
}

func (c *cluster) observe(want servers) observation {
	var o observation
	var err error
	if o.serf, err = c.serfBackends(); err != nil {
		o.errs = append(o.errs, err.Error())
	}
	if o.config, err = c.configServers(); err != nil {
		o.errs = append(o.errs, err.Error())
	}
	if o.haproxy, err = c.haproxyServers(); err != nil {
		o.errs = append(o.errs, err.Error())
	}
	// Round robin: 3 rounds see every routed server.
	o.front = c.probeFrontend(3*len(want) + 3)
	return o
}

// agrees reports whether every view equals want.
func (o observation) agrees(want servers) bool {
	if len(o.errs) > 0 || !o.serf.Equal(want) || !o.config.Equal(want) ||
		!o.haproxy.configured.Equal(want) || !o.haproxy.routed.Equal(want) || o.front.Bad > 0 {
		return false
	}
	if len(want) == 0 {
		return len(o.front.Seen) == 0 && o.front.N503 > 0
	}
	if o.front.N503 > 0 || len(o.front.Seen) != len(want) {
		return false
	}
	for name := range o.front.Seen {
		if _, ok := want[name]; !ok {
			return false
		}
	}
	return true
}

// converge waits up to d until all five views equal want, and returns
// how long that took.
func (c *cluster) converge(want servers, d time.Duration) time.Duration {
	c.t.Helper()
	took, o, ok := c.tryConverge(want, d)
	if !ok {
		c.fatalf("views did not converge to %v within %v:\n%v", want, d, o)
	}
	return took
}

func (c *cluster) tryConverge(want servers, d time.Duration) (time.Duration, observation, bool) {
	start := time.Now()
	deadline := start.Add(d)
	var o observation
	for i := 0; i < int(d/(100*time.Millisecond))+2; i++ {
		o = c.observe(want)
		if o.agrees(want) {
			return time.Since(start), o, true
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return time.Since(start), o, false
}

// want returns the expected servers for the named running backends.
func (c *cluster) want(names ...string) servers {
	s := servers{}
	for _, n := range names {
		s[n] = fmt.Sprintf("%s:%d", c.backend(n).ip, httpPort)
	}
	return s
}

// --- serf-hb's log ----------------------------------------------------------

// hbRun is one summary line of serf-hb's log.
type hbRun map[string]string

func (r hbRun) time() time.Time {
	t, _ := time.Parse(time.RFC3339Nano, r["time"])
	return t
}

func (r hbRun) took() time.Duration {
	d, _ := time.ParseDuration(r["took"])
	return d
}

func (c *cluster) hbLogSize() int64 {
	fi, err := os.Stat(c.hbLog)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// hbRuns parses serf-hb's log lines written after offset.
func (c *cluster) hbRuns(offset int64) []hbRun {
	b, err := os.ReadFile(c.hbLog)
	if err != nil || offset > int64(len(b)) {
		return nil
	}
	var runs []hbRun
	for _, line := range strings.Split(string(b[offset:]), "\n") {
		if line != "" {
			runs = append(runs, hbRun(harness.ParseLogfmt(line)))
		}
	}
	return runs
}

// waitRun waits up to d for a serf-hb log line after offset that matches.
func (c *cluster) waitRun(offset int64, d time.Duration, what string, match func(hbRun) bool) hbRun {
	c.t.Helper()
	var found hbRun
	c.waitFor("serf-hb run: "+what, d, func() error {
		for _, r := range c.hbRuns(offset) {
			if match(r) {
				found = r
				return nil
			}
		}
		return fmt.Errorf("no such line in %s", c.hbLog)
	})
	return found
}

// hasName reports whether a comma-separated list from the log holds name.
func hasName(list, name string) bool {
	for _, n := range strings.Split(list, ",") {
		if n == name {
			return true
		}
	}
	return false
}

// --- s6 ---------------------------------------------------------------------

func (c *cluster) svc(args ...string) {
	c.t.Helper()
	if out, err := harness.Run(5*time.Second, nil, append([]string{"s6-svc"}, args...)...); err != nil {
		c.fatalf("%v %s", err, out)
	}
}

// svstat returns whether the service is up and its PID.
func (c *cluster) svstat(service string) (bool, int) {
	out, err := harness.Run(5*time.Second, nil, "s6-svstat", "-o", "up,pid", filepath.Join(c.scan, service))
	if err != nil {
		return false, 0
	}
	f := strings.Fields(out)
	if len(f) != 2 {
		return false, 0
	}
	pid, _ := strconv.Atoi(f[1])
	return f[0] == "true", pid
}

// --- HAProxy processes ------------------------------------------------------

// pidWatch records every HAProxy process running the cluster's config
// while it runs, polling /proc every 20 ms.
type pidWatch struct {
	stop chan struct{}
	done chan struct{}
	seen map[int]bool
	max  int
}

func (c *cluster) watchHAProxy() *pidWatch {
	w := &pidWatch{stop: make(chan struct{}), done: make(chan struct{}), seen: map[int]bool{}}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := 0; i < 30000; i++ { // 10 minutes at most
			pids := harness.HAProxyPIDs(c.cfgPath)
			if len(pids) > w.max {
				w.max = len(pids)
			}
			for _, p := range pids {
				w.seen[p] = true
			}
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return w
}

// finish stops the watch and returns the PIDs seen and the most seen at
// once.
func (w *pidWatch) finish() ([]int, int) {
	close(w.stop)
	<-w.done
	var pids []int
	for p := range w.seen {
		pids = append(pids, p)
	}
	sort.Ints(pids)
	return pids, w.max
}
