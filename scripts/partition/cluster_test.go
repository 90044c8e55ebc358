package partition

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/serf-hb/serf-hb/internal/haproxytest"
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
	svscan                      *proc
	backends                    []*backend
	client                      *http.Client
}

type backend struct {
	name, ip    string
	agent, http *proc
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
	t.Cleanup(c.shutdown)
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
		"check":     haproxytest.Check(haproxyBin),
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
	if out, err := run(30*time.Second, nil, serfHB, "--config", c.hbConfig, "--reload", "", "render"); err != nil {
		c.fatalf("initial render: %v %s", err, out)
	}

	handler := shq(serfHB) + " --config " + shq(c.hbConfig)
	c.service("haproxy", "exec "+shq(haproxyBin)+" -W -db -f "+shq(c.cfgPath), filepath.Join(c.logDir, "haproxy.log"))
	c.service("serf", "exec serf agent -node lb -bind "+lbIP+" -config-file "+shq(c.agentConf)+
		" -tag role=balancer -event-handler "+
		shq("member-join,member-leave,member-failed,member-update,member-reap="+handler), c.serfLog)
	c.svscan, err = startProc("s6-svscan", filepath.Join(c.logDir, "svscan.log"), nil,
		n.exec(n.lb, "env", "--default-signal", "s6-svscan", c.scan)...)
	c.must(err)
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
	script := "#!/bin/sh\nexec >>" + shq(log) + " 2>&1\n" + cmd + "\n"
	c.must(os.WriteFile(filepath.Join(c.scan, name, "run"), []byte(script), 0o755))
}

// startBackends starts n backends, web1..webN, in the backends' namespace:
// an HTTP server (this test binary, see serveBackend) and a serf agent that
// joins the balancer.
func (c *cluster) startBackends(n int) {
	c.t.Helper()
	self, err := os.Executable()
	c.must(err)
	for i := range n {
		b := &backend{name: fmt.Sprintf("web%d", i+1), ip: backendIP(i)}
		c.backends = append(c.backends, b)
		httpLog := filepath.Join(c.logDir, b.name+".http.log")
		b.http, err = startProc(b.name+" http", httpLog,
			[]string{backendVar + "=" + b.name, listenVar + "=" + net.JoinHostPort(b.ip, strconv.Itoa(httpPort))},
			c.net.exec(c.net.be, self)...)
		c.must(err)
		c.waitFor(b.name+" to listen", 20*time.Second, func() error {
			if data, _ := os.ReadFile(httpLog); !bytes.Contains(data, []byte("listening")) {
				return fmt.Errorf("no \"listening\" line in %s", httpLog)
			}
			return nil
		})
		b.agent, err = startProc(b.name+" serf", filepath.Join(c.logDir, b.name+".serf.log"), nil,
			c.net.exec(c.net.be, "serf", "agent", "-node", b.name, "-bind", b.ip,
				"-rpc-addr", net.JoinHostPort(b.ip, "7373"), "-config-file", c.agentConf,
				"-tag", "role=backend", "-tag", "port="+strconv.Itoa(httpPort), "-join", lbIP)...)
		c.must(err)
	}
}

// shutdown stops every process, by PID: the backends, then s6-svscan and
// its services. The namespaces' removal (registered earlier, so run
// later) kills anything left in them.
func (c *cluster) shutdown() {
	for _, b := range c.backends {
		for _, p := range []*proc{b.agent, b.http} {
			if p != nil {
				p.kill()
			}
		}
	}
	if c.svscan != nil {
		run(5*time.Second, nil, "s6-svscanctl", "-t", c.scan)
		if !c.svscan.wait(10 * time.Second) {
			c.t.Logf("s6-svscan did not stop within 10s, killing it")
			c.svscan.kill()
		}
	}
}

// fatalf fails the test with the tail of every log file.
func (c *cluster) fatalf(format string, args ...any) {
	c.t.Helper()
	var b strings.Builder
	files, _ := filepath.Glob(filepath.Join(c.logDir, "*"))
	for _, f := range files {
		data, _ := os.ReadFile(f)
		if len(data) > 3<<10 {
			data = append([]byte("...\n"), data[len(data)-3<<10:]...)
		}
		fmt.Fprintf(&b, "\n----- %s -----\n%s", filepath.Base(f), data)
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
	var err error
	for i := 0; i < int(d/(100*time.Millisecond))+2; i++ {
		if err = fn(); err == nil {
			return time.Since(start)
		}
		if time.Since(start) > d {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.fatalf("waited %v for %s: %v", d, what, err)
	return 0
}

// --- the views -------------------------------------------------------------

// servers maps a server name to its address:port.
type servers map[string]string

func (s servers) String() string {
	keys := make([]string, 0, len(s))
	for k := range s {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		keys[i] = k + "@" + s[k]
	}
	return "{" + strings.Join(keys, " ") + "}"
}

func (s servers) equal(o servers) bool {
	if len(s) != len(o) {
		return false
	}
	for k, v := range s {
		if o[k] != v {
			return false
		}
	}
	return true
}

// subsetOf reports whether every server of s is in o, with its address.
func (s servers) subsetOf(o servers) bool {
	for k, v := range s {
		if o[k] != v {
			return false
		}
	}
	return true
}

// want is every backend the cluster started.
func (c *cluster) want() servers {
	s := servers{}
	for _, b := range c.backends {
		s[b.name] = net.JoinHostPort(b.ip, strconv.Itoa(httpPort))
	}
	return s
}

type member struct {
	Name   string            `json:"name"`
	Addr   string            `json:"addr"`
	Tags   map[string]string `json:"tags"`
	Status string            `json:"status"`
}

// members asks the balancer's agent (inside its namespace) for every
// member it knows.
func (c *cluster) members() ([]member, error) {
	out, err := run(5*time.Second, nil, c.net.exec(c.net.lb, "serf", "members", "-format", "json")...)
	if err != nil {
		return nil, err
	}
	var v struct{ Members []member }
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		return nil, fmt.Errorf("serf members: %v", err)
	}
	return v.Members, nil
}

// serfBackends is Serf's view: the alive role=backend members.
func (c *cluster) serfBackends() (servers, error) {
	ms, err := c.members()
	if err != nil {
		return nil, err
	}
	s := servers{}
	for _, m := range ms {
		if m.Status != "alive" || m.Tags["role"] != "backend" {
			continue
		}
		host, _, err := net.SplitHostPort(m.Addr)
		if err != nil {
			return nil, fmt.Errorf("member %s: %v", m.Name, err)
		}
		s[m.Name] = net.JoinHostPort(host, m.Tags["port"])
	}
	return s, nil
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

// registry is serf-hb's registry, as `serf-hb nodes --json` lists it.
func (c *cluster) registry() (servers, error) {
	out, err := run(10*time.Second, nil, serfHB, "--config", c.hbConfig, "nodes", "--json")
	if err != nil {
		return nil, err
	}
	var list []struct {
		Name, Addr string
		Port       *int
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		return nil, fmt.Errorf("serf-hb nodes --json: %v: %q", err, out)
	}
	s := servers{}
	for _, n := range list {
		port := "3000"
		if n.Port != nil {
			port = strconv.Itoa(*n.Port)
		}
		s[n.Name] = net.JoinHostPort(n.Addr, port)
	}
	return s, nil
}

// configServers reads the server lines of the installed configuration.
func (c *cluster) configServers() (servers, error) {
	b, err := os.ReadFile(c.cfgPath)
	if err != nil {
		return nil, err
	}
	s := servers{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 3 && f[0] == "server" {
			s[f[1]] = f[2]
		}
	}
	return s, nil
}

// haproxyState is HAProxy's own view (show servers state): the servers of
// backend nodes, and those it routes to (UP, not in maintenance).
type haproxyState struct{ configured, routed servers }

func (c *cluster) haproxyServers() (haproxyState, error) {
	conn, err := net.DialTimeout("unix", c.adminSock, 2*time.Second)
	if err != nil {
		return haproxyState{}, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(conn, "show servers state nodes\n"); err != nil {
		return haproxyState{}, err
	}
	b, err := io.ReadAll(conn)
	if err != nil {
		return haproxyState{}, err
	}
	if !bytes.HasPrefix(b, []byte("1\n")) {
		return haproxyState{}, fmt.Errorf("show servers state: unexpected answer %q", b)
	}
	st := haproxyState{configured: servers{}, routed: servers{}}
	for _, line := range strings.Split(string(b), "\n") {
		// be_id be_name srv_id srv_name srv_addr srv_op_state
		// srv_admin_state ... srv_port (field 18)
		f := strings.Fields(line)
		if len(f) < 19 || strings.HasPrefix(f[0], "#") {
			continue
		}
		addr := net.JoinHostPort(f[4], f[18])
		st.configured[f[3]] = addr
		if f[5] == "2" && f[6] == "0" {
			st.routed[f[3]] = addr
		}
	}
	return st, nil
}

// get sends one request through the frontend and returns the name of the
// backend that answered.
func (c *cluster) get() (string, int, error) {
	resp, err := c.client.Get("http://balancer/")
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return strings.TrimSpace(string(b)), resp.StatusCode, err
}

// frontendView is what clients see over n requests: who answered, how many
// got a 503 (no server), how many failed otherwise.
type frontendView struct {
	seen      map[string]int
	n503, bad int
	lastErr   string
}

func (c *cluster) probe(n int) frontendView {
	v := frontendView{seen: map[string]int{}}
	for range n {
		name, code, err := c.get()
		switch {
		case err != nil:
			v.bad++
			v.lastErr = err.Error()
		case code == http.StatusServiceUnavailable:
			v.n503++
		case code != http.StatusOK:
			v.bad++
			v.lastErr = fmt.Sprintf("status %d", code)
		default:
			v.seen[name]++
		}
	}
	return v
}

// answeredBy reports whether exactly the servers of want answered, and
// nothing failed (with want empty: every request got a 503).
func (v frontendView) answeredBy(want servers) bool {
	if v.bad > 0 || len(v.seen) != len(want) || (len(want) > 0 && v.n503 > 0) || (len(want) == 0 && v.n503 == 0) {
		return false
	}
	for name := range v.seen {
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
	names := make([]string, 0, len(o.front.seen))
	for k := range o.front.seen {
		names = append(names, k)
	}
	slices.Sort(names)
	return fmt.Sprintf("serf alive role=backend: %v\nregistry:                %v\nconfig server lines:     %v\nhaproxy configured:      %v\nhaproxy routes to:       %v\nfrontend answered by:    %v (503: %d, failed: %d %s)\nerrors: %v",
		o.serf, o.registry, o.config, o.haproxy.configured, o.haproxy.routed, names, o.front.n503, o.front.bad, o.front.lastErr, o.errs)
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
		if len(o.errs) == 0 && o.serf.equal(want) && o.registry.equal(want) && o.config.equal(want) &&
			o.haproxy.configured.equal(want) && o.haproxy.routed.equal(want) && o.front.answeredBy(want) {
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
			runs = append(runs, parseLogfmt(line))
		}
	}
	return runs
}

func parseLogfmt(line string) map[string]string {
	r := map[string]string{}
	for line = strings.TrimSpace(line); line != ""; line = strings.TrimLeft(line, " ") {
		key, rest, ok := strings.Cut(line, "=")
		if !ok {
			break
		}
		var val string
		if strings.HasPrefix(rest, `"`) {
			q, err := strconv.QuotedPrefix(rest)
			if err != nil {
				break
			}
			val, _ = strconv.Unquote(q)
			rest = rest[len(q):]
		} else {
			val, rest, _ = strings.Cut(rest, " ")
		}
		r[key] = val
		line = rest
	}
	return r
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
		}
	}()
	return l
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
