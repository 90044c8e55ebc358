package synctest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/serf-hb/serf-hb/scripts/internal/harness"
)

func TestMain(m *testing.M) {
	os.Exit(harness.Main(m, harness.Suite{
		Name:  "synctest",
		Needs: []string{"serf", "haproxy", "s6-svscan", "s6-svscanctl", "s6-envdir", "env", "sh", "sleep"},
	}))
}

// The cluster, on 127.0.2.0/24 only: every agent binds its own address,
// gossip on :7946 and RPC on :7373.
const (
	lbIP    = "127.0.2.1"
	lbRPC   = lbIP + ":7373"
	authKey = "synctest-rpc-key"
	// deadRPC has nothing listening.
	deadRPC = "127.0.2.250:7373"
)

var backendIP = map[string]string{"b1": "127.0.2.11", "b2": "127.0.2.12", "b3": "127.0.2.13", "b4": "127.0.2.14"}

// lab is one balancer agent running serf-hb, backend agents, and serf-hb's
// registry, output and reload record.
type lab struct {
	// top owns the processes: an agent started in one subtest serves the
	// next ones. t is the test running now (a subtest, within run), the
	// one a failure must stop.
	top, t  *testing.T
	dir     string
	bin     string // serf-hb, built by TestMain
	nodes   string
	output  string
	reloads string // one line per reload
	logDir  string // every log: agents', serf-hb's, s6's
	logFile string // serf-hb's --log-file
	logs    *harness.Logs
	base    []string
	agents  map[string]*harness.Proc
}

func newLab(t *testing.T) *lab {
	dir := t.TempDir()
	l := &lab{top: t, t: t, dir: dir, bin: harness.Bin("serf-hb"),
		nodes: filepath.Join(dir, "nodes"), output: filepath.Join(dir, "haproxy.cfg"),
		reloads: filepath.Join(dir, "reloads"), logDir: filepath.Join(dir, "logs"),
		agents: map[string]*harness.Proc{}}
	l.logFile = filepath.Join(l.logDir, "serf-hb.log")
	l.logs = &harness.Logs{Dir: l.logDir}
	for _, d := range []string{l.nodes, l.logDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	empty := filepath.Join(dir, "empty.json")
	lbConf := filepath.Join(dir, "lb.json")
	for p, s := range map[string]string{empty: "{}\n", lbConf: fmt.Sprintf("{\"rpc_auth\": %q}\n", authKey)} {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// serf-hb's settings, for the handler (through the balancer agent's
	// environment) and for the sync command alike; nothing from the
	// caller's environment leaks in.
	l.base = []string{
		"PATH=" + os.Getenv("PATH") + ":/usr/sbin:/sbin",
		"HOME=" + dir,
		"SERF_HB_CONFIG=" + empty,
		"SERF_HB_NODES_DIR=" + l.nodes,
		"SERF_HB_OUTPUT=" + l.output,
		"SERF_HB_CHECK=" + harness.HAProxyCheck(),
		"SERF_HB_RELOAD=sh -c 'echo reload >> " + l.reloads + "'",
		"SERF_HB_LOG_FILE=" + l.logFile,
	}
	return l
}

// run runs one subtest of the scenario: the subtests share the cluster and
// run in order, each from the state the previous one left. A failure shows
// what every log got during the subtest.
func (l *lab) run(name string, fn func(t *testing.T)) {
	l.top.Run(name, func(t *testing.T) {
		l.t = t
		defer func() { l.t = l.top }()
		l.logs.Mark()
		fn(t)
	})
}

// start runs a serf agent; it returns once the agent's RPC port answers.
// The agent leads a process group of its own, so that the handler runs it
// started die with it at clean-up.
func (l *lab) start(name, ip string, env []string, args ...string) *harness.Proc {
	l.t.Helper()
	argv := append([]string{harness.Bin("serf"), "agent", "-node", name, "-bind", ip + ":7946", "-rpc-addr", ip + ":7373", "-log-level", "debug"}, args...)
	a, err := harness.Start(l.top, harness.Cmd{
		Name: "serf agent " + name, Argv: argv, Log: filepath.Join(l.logDir, name+".log"),
		Env: append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + l.dir}, env...),
	})
	if err != nil {
		l.t.Fatal(err)
	}
	l.agents[name] = a
	err = harness.Wait("serf agent "+name+"'s RPC port", 15*time.Second, 50*time.Millisecond, func() error {
		if a.Exited() {
			return harness.Permanent(fmt.Errorf("it exited at start-up (another run on %s?)", ip))
		}
		c, err := net.DialTimeout("tcp", ip+":7373", 200*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err
	})
	if err != nil {
		l.t.Fatalf("%v:\n%s", err, harness.Tail(a.Log))
	}
	return a
}

// startLB starts the balancer agent with serf-hb as its handler for member
// events (handler is the command line) and for the serf-hb-sync user event.
func (l *lab) startLB(handler string, args ...string) *harness.Proc {
	env := append(slices.Clone(l.base), "SERF_HB_RPC_ADDR="+lbRPC, "SERF_HB_RPC_AUTH="+authKey)
	argv := append([]string{"-config-file", filepath.Join(l.dir, "lb.json"), "-tag", "role=lb",
		"-event-handler", "member-join,member-leave,member-failed,member-update,member-reap=" + handler,
		"-event-handler", "user:serf-hb-sync=" + l.bin}, args...)
	return l.start("lb", lbIP, env, argv...)
}

func (l *lab) startBackend(name string) *harness.Proc {
	ip := backendIP[name]
	return l.start(name, ip, nil, "-tag", "role=backend", "-tag", "port=300"+name[1:], "-join", lbIP)
}

// startS6 runs the shipped s6 service (scripts/s6/serf-hb-sync) under a
// real s6-svscan on a scan directory of its own, with the lab's settings
// in the service's env/ directory. The returned func stops s6-svscan and
// the service; it may be called more than once.
func (l *lab) startS6(t *testing.T, extra map[string]string) func() {
	t.Helper()
	scan := filepath.Join(l.dir, "scan")
	svc := filepath.Join(scan, "serf-hb-sync")
	if err := os.MkdirAll(filepath.Join(svc, "env"), 0o755); err != nil {
		t.Fatal(err)
	}
	run, err := os.ReadFile(filepath.Join("..", "s6", "serf-hb-sync", "run"))
	if err != nil {
		t.Fatalf("read the shipped run script: %v", err)
	}
	if err := os.WriteFile(filepath.Join(svc, "run"), run, 0o755); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"SERF_RPC_ADDR": lbRPC, "SERF_RPC_AUTH": authKey}
	for _, kv := range l.base {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	env["PATH"] = filepath.Dir(l.bin) + ":" + env["PATH"] // serf-hb on PATH
	for k, v := range extra {
		env[k] = v
	}
	for k, v := range env {
		if err := os.WriteFile(filepath.Join(svc, "env", k), []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// --default-signal: a run script that inherits an ignored SIGHUP or
	// SIGTERM could not be stopped.
	svscan, err := harness.Start(t, harness.Cmd{
		Name: "s6-svscan", Argv: []string{"env", "--default-signal", "s6-svscan", scan},
		Env: []string{"PATH=" + os.Getenv("PATH")}, Log: filepath.Join(l.logDir, "s6.log"),
	})
	if err != nil {
		t.Fatal(err)
	}
	stop := func() {
		if svscan.Exited() {
			return
		}
		harness.Run(5*time.Second, nil, "s6-svscanctl", "-t", scan)
		if !svscan.Wait(10 * time.Second) {
			svscan.Kill()
			t.Errorf("s6-svscan did not stop within 10s; killed:\n%s", harness.Tail(svscan.Log))
		}
	}
	t.Cleanup(stop)
	return stop
}

// stopAgent signals an agent and waits for it to exit; SIGINT makes it leave
// the cluster gracefully, SIGTERM stops it without a leave.
func stopAgent(t *testing.T, a *harness.Proc, sig syscall.Signal) {
	t.Helper()
	if !a.Stop(sig, 20*time.Second) {
		t.Fatalf("%s ignored %v for 20s", a.Name, sig)
	}
}

// result is one serf-hb run.
type result struct {
	stdout, stderr string
	code           int
	took           time.Duration
}

// serfHB runs serf-hb with the lab's settings plus env.
func (l *lab) serfHB(stdin string, env []string, args ...string) result {
	l.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, l.bin, args...)
	cmd.Env = append(slices.Clone(l.base), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String(), took: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		l.t.Fatalf("run serf-hb: %v", err)
	}
	return r
}

// sync runs `serf-hb sync`, reaching the agent through Serf's own
// variables, SERF_RPC_ADDR and SERF_RPC_AUTH.
func (l *lab) sync(args ...string) result {
	l.t.Helper()
	return l.serfHB("", []string{"SERF_RPC_ADDR=" + lbRPC, "SERF_RPC_AUTH=" + authKey}, append([]string{"sync"}, args...)...)
}

// registry reads the registry (harness.ReadRegistry: every file must be a
// complete node file) as "NAME ADDR" lines, sorted.
func (l *lab) registry() ([]string, error) {
	r, err := harness.ReadRegistry(l.nodes)
	return r.Lines(), err
}

func (l *lab) mustRegistry() harness.Registry {
	l.t.Helper()
	r, err := harness.ReadRegistry(l.nodes)
	if err != nil {
		l.t.Fatal(err)
	}
	return r
}

func (l *lab) reloadCount() int {
	b, err := os.ReadFile(l.reloads)
	if errors.Is(err, fs.ErrNotExist) {
		return 0
	}
	if err != nil {
		l.t.Fatal(err)
	}
	return bytes.Count(b, []byte("\n"))
}

func (l *lab) logLines() []string {
	b, err := os.ReadFile(l.logFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		l.t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// waitFor polls cond until it returns nil, failing the test after timeout
// with the registry and what every log got during the subtest.
func (l *lab) waitFor(what string, timeout time.Duration, cond func() error) {
	l.t.Helper()
	if err := harness.Wait(what, timeout, 50*time.Millisecond, cond); err != nil {
		reg, rerr := l.registry()
		l.t.Fatalf("%v\nregistry %q %v%s", err, reg, rerr, l.logs.Since())
	}
}

// waitRegistry waits until the registry holds exactly want.
func (l *lab) waitRegistry(what string, timeout time.Duration, want ...string) {
	l.t.Helper()
	l.waitFor(what, timeout, func() error {
		got, err := l.registry()
		if err == nil && !reflect.DeepEqual(got, want) {
			err = fmt.Errorf("registry = %q, want %q", got, want)
		}
		return err
	})
}

// waitQuiet waits for the handler to have logged a run after the first
// since lines, then for 2s without a new one: Serf coalesces member events
// for up to 3s and ends a window after 1s of quiet.
func (l *lab) waitQuiet(since int) {
	l.t.Helper()
	l.waitFor("a handler run", 30*time.Second, func() error {
		if n := len(l.logLines()); n <= since {
			return fmt.Errorf("%d log lines", n)
		}
		return nil
	})
	deadline := time.Now().Add(30 * time.Second)
	n, last := len(l.logLines()), time.Now()
	for time.Since(last) < 2*time.Second {
		if time.Now().After(deadline) {
			l.t.Fatalf("the handler never went quiet:\n%s", harness.Tail(l.logFile))
		}
		time.Sleep(100 * time.Millisecond)
		if m := len(l.logLines()); m != n {
			n, last = m, time.Now()
		}
	}
}

// snapshot records the registry's files (dotfiles included) and the output,
// with contents and modification times.
func (l *lab) snapshot() map[string]string {
	l.t.Helper()
	out := map[string]string{}
	for _, p := range append(l.glob(l.nodes), l.output) {
		fi, err := os.Stat(p)
		if err != nil {
			l.t.Fatal(err)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			l.t.Fatal(err)
		}
		out[p] = fi.ModTime().String() + "|" + string(b)
	}
	return out
}

func (l *lab) glob(dir string) []string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		l.t.Fatal(err)
	}
	var list []string
	for _, e := range entries {
		list = append(list, filepath.Join(dir, e.Name()))
	}
	return list
}

func (l *lab) writeNode(name, addr string) {
	l.t.Helper()
	// The lab's own layout: one line, "NAME ADDR".
	if err := os.WriteFile(filepath.Join(l.nodes, name), []byte(name+" "+addr+"\n"), 0o644); err != nil {
		l.t.Fatal(err)
	}
}

func (l *lab) removeNode(name string) {
	l.t.Helper()
	if err := os.Remove(filepath.Join(l.nodes, name)); err != nil {
		l.t.Fatal(err)
	}
}

func (l *lab) outputText() string {
	b, err := os.ReadFile(l.output)
	if err != nil {
		l.t.Fatal(err)
	}
	return string(b)
}

func wantRegistry(t *testing.T, l *lab, want ...string) {
	t.Helper()
	if got := l.mustRegistry().Lines(); !reflect.DeepEqual(got, want) {
		t.Fatalf("registry = %q, want %q", got, want)
	}
}

func wantRun(t *testing.T, r result, code int, stdout string, stderr ...string) {
	t.Helper()
	if r.code != code || r.stdout != stdout {
		t.Fatalf("exit %d, stdout %q; want exit %d, stdout %q\nstderr: %s", r.code, r.stdout, code, stdout, r.stderr)
	}
	for _, s := range stderr {
		if !strings.Contains(r.stderr, s) {
			t.Fatalf("stderr lacks %q:\n%s", s, r.stderr)
		}
	}
}

var tookRE = regexp.MustCompile(`took=([0-9.]+[µnm]?s)`)

// tookOf reads the took= attribute of a summary line.
func tookOf(t *testing.T, line string) time.Duration {
	t.Helper()
	m := tookRE.FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("no took= in %q", line)
	}
	d, err := time.ParseDuration(m[1])
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func TestSyncAgainstRealAgents(t *testing.T) {
	l := newLab(t)
	lb := l.startLB(l.bin)
	for _, b := range []string{"b1", "b2", "b3"} {
		l.startBackend(b)
	}
	all3 := []string{"b1 127.0.2.11", "b2 127.0.2.12", "b3 127.0.2.13"}
	l.waitRegistry("the join events to register b1-b3", 30*time.Second, all3...)
	l.waitQuiet(0)

	l.run("sync after events changes nothing", func(t *testing.T) {
		// The agent's member list and the event lines describe members
		// alike (address, role, tags), so sync has nothing to fix.
		reloads := l.reloadCount()
		r := l.sync()
		wantRun(t, r, 0, "", "msg=sync", "members=3", `added="" updated="" removed=""`, "result=unchanged")
		if l.reloadCount() != reloads {
			t.Errorf("sync reloaded with nothing changed")
		}
	})

	l.run("backend leaves while the balancer agent is down", func(t *testing.T) {
		stopAgent(t, lb, syscall.SIGTERM)
		stopAgent(t, l.agents["b3"], syscall.SIGINT) // graceful leave, unseen by the balancer
		lines := len(l.logLines())
		lb = l.startLB(l.bin, "-join", backendIP["b1"])
		l.waitQuiet(lines)
		// The restarted agent never learns of b3: no event removes it.
		wantRegistry(t, l, all3...)
		if !strings.Contains(l.outputText(), "server b3 ") {
			t.Fatal("b3 left the output without a sync")
		}
		reloads := l.reloadCount()
		r := l.sync()
		wantRun(t, r, 0, "- b3\n", "removed=b3", "result=reloaded")
		wantRegistry(t, l, "b1 127.0.2.11", "b2 127.0.2.12")
		if strings.Contains(l.outputText(), "b3") {
			t.Errorf("b3 still in the output:\n%s", l.outputText())
		}
		if got := l.reloadCount(); got != reloads+1 {
			t.Errorf("%d reloads, want 1", got-reloads)
		}
	})

	l.run("node in the registry that is no member is removed", func(t *testing.T) {
		l.writeNode("ghost", "127.0.2.99")
		r := l.sync()
		wantRun(t, r, 0, "- ghost\n", "removed=ghost")
		wantRegistry(t, l, "b1 127.0.2.11", "b2 127.0.2.12")
	})

	l.run("member missing from the registry is added", func(t *testing.T) {
		l.removeNode("b2")
		r := l.sync()
		wantRun(t, r, 0, "+ b2 127.0.2.12\n", "added=b2")
		wantRegistry(t, l, "b1 127.0.2.11", "b2 127.0.2.12")
		if b2 := l.mustRegistry().Nodes["b2"]; b2.Tags["port"] != "3002" {
			t.Errorf("b2's tags were not registered: %q", b2.Data)
		}
		if !strings.Contains(l.outputText(), "server b2 127.0.2.12:3002 check") {
			t.Errorf("output lacks b2:\n%s", l.outputText())
		}
	})

	l.run("dry run changes nothing", func(t *testing.T) {
		l.writeNode("ghost", "127.0.2.99")
		l.removeNode("b1")
		before, reloads := l.snapshot(), l.reloadCount()
		r := l.sync("--dry-run")
		wantRun(t, r, 0, "+ b1 127.0.2.11\n- ghost\n")
		if after := l.snapshot(); !reflect.DeepEqual(before, after) {
			t.Errorf("--dry-run touched files:\nbefore %v\nafter  %v", before, after)
		}
		if l.reloadCount() != reloads {
			t.Error("--dry-run reloaded")
		}
		// The real run does what the dry run said.
		wantRun(t, l.sync(), 0, "+ b1 127.0.2.11\n- ghost\n")
		wantRegistry(t, l, "b1 127.0.2.11", "b2 127.0.2.12")
	})

	l.run("agent unreachable touches nothing", func(t *testing.T) {
		l.writeNode("ghost", "127.0.2.99") // work a sync would do
		before, reloads := l.snapshot(), l.reloadCount()
		r := l.serfHB("", []string{"SERF_RPC_ADDR=" + deadRPC, "SERF_RPC_AUTH=" + authKey}, "sync")
		wantRun(t, r, 1, "", "level=ERROR", "query serf agent "+deadRPC, "connection refused", "left as they were", "hint:")
		// The auth key missing: the agent refuses, and says so.
		r = l.serfHB("", []string{"SERF_RPC_ADDR=" + lbRPC}, "sync")
		wantRun(t, r, 1, "", "query serf agent "+lbRPC, "Authentication required", "--rpc-auth")
		// A wrong key.
		r = l.serfHB("", nil, "sync", "--rpc-addr", lbRPC, "--rpc-auth", "wrong")
		wantRun(t, r, 1, "", "Invalid authentication token")
		if after := l.snapshot(); !reflect.DeepEqual(before, after) {
			t.Errorf("a failed sync touched files:\nbefore %v\nafter  %v", before, after)
		}
		if l.reloadCount() != reloads {
			t.Error("a failed sync reloaded")
		}
		wantRun(t, l.sync(), 0, "- ghost\n")
	})

	l.run("serf-hb-sync user event", func(t *testing.T) {
		l.writeNode("ghost", "127.0.2.99")
		l.removeNode("b2")
		lines := len(l.logLines())
		// Sent from a backend: every agent that handles it syncs.
		if out, err := harness.Run(10*time.Second, nil, harness.Bin("serf"), "event", "-rpc-addr", backendIP["b1"]+":7373", "serf-hb-sync"); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		l.waitRegistry("the user event to sync", 20*time.Second, "b1 127.0.2.11", "b2 127.0.2.12")
		l.waitFor("the user event's log line", 5*time.Second, func() error {
			if len(l.logLines()) <= lines {
				return errors.New("no new line in serf-hb's log")
			}
			return nil
		})
		line := l.logLines()[lines]
		for _, s := range []string{"event=user", "name=serf-hb-sync", "added=b2", "removed=ghost"} {
			if !strings.Contains(line, s) {
				t.Errorf("log line lacks %s: %s", s, line)
			}
		}
	})

	l.run("a member Serf lists as leaving is kept until its member-leave", func(t *testing.T) {
		// Serf lists a member as leaving from its leave intent until the
		// leave completes (~0.8 s on loopback), while it still serves: a
		// sync in that window must not remove it; its member-leave does.
		lines := len(l.logLines()) // before b4's join, whose run waitQuiet waits for
		b4 := l.startBackend("b4")
		l.waitRegistry("b4's join", 20*time.Second, "b1 127.0.2.11", "b2 127.0.2.12", "b4 127.0.2.14")
		l.waitQuiet(lines)
		if err := b4.Signal(syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		l.waitFor("the balancer's agent to list b4 as leaving", 10*time.Second, func() error {
			out, err := harness.Run(5*time.Second, nil, harness.Bin("serf"), "members", "-rpc-addr", lbRPC, "-rpc-auth", authKey, "-name", "b4", "-status", "leaving")
			if err != nil || !strings.Contains(out, "leaving") {
				return fmt.Errorf("b4 not listed as leaving: %v %s", err, out)
			}
			return nil
		})
		r := l.sync()
		if r.code != 0 || strings.Contains(r.stdout, "- b4") {
			t.Fatalf("a sync while b4 is leaving removed it, or failed: exit %d, stdout %q\n%s", r.code, r.stdout, r.stderr)
		}
		l.waitRegistry("b4's member-leave to remove it", 20*time.Second, "b1 127.0.2.11", "b2 127.0.2.12")
		stopAgent(t, b4, syscall.SIGINT)
	})

	l.run("reconcile heals on the next event", func(t *testing.T) {
		stopAgent(t, lb, syscall.SIGTERM)
		lines := len(l.logLines())
		lb = l.startLB(l.bin+" --reconcile", "-join", backendIP["b1"])
		l.waitQuiet(lines)
		l.writeNode("ghost", "127.0.2.99")
		l.removeNode("b1")
		lines = len(l.logLines())
		reloads := l.reloadCount()
		l.startBackend("b4")
		want := []string{"b1 127.0.2.11", "b2 127.0.2.12", "b4 127.0.2.14"}
		l.waitRegistry("b4's join to reconcile the registry", 30*time.Second, want...)
		l.waitQuiet(lines)
		var line string
		for _, s := range l.logLines()[lines:] {
			if strings.Contains(s, "added=b4") {
				line = s
			}
		}
		for _, s := range []string{"event=member-join", "reconcile=fixed", "reconcile_added=b1", "reconcile_removed=ghost", "result=reloaded"} {
			if !strings.Contains(line, s) {
				t.Errorf("log line lacks %s: %q", s, line)
			}
		}
		if got := l.reloadCount() - reloads; got != 1 {
			t.Errorf("%d reloads for one event, want 1", got)
		}
	})

	l.run("s6 service syncs at start-up and periodically", func(t *testing.T) {
		l.writeNode("ghost", "127.0.2.99")
		svcLog := filepath.Join(l.logDir, "s6-sync.log")
		stop := l.startS6(t, map[string]string{"SERF_HB_SYNC_INTERVAL": "1", "SERF_HB_LOG_FILE": svcLog})
		defer stop()
		want := []string{"b1 127.0.2.11", "b2 127.0.2.12", "b4 127.0.2.14"}
		l.waitRegistry("the s6 service's first sync", 15*time.Second, want...)
		// Later passes heal later damage.
		l.removeNode("b2")
		l.waitRegistry("a later pass to re-add b2", 15*time.Second, want...)
		stop()
		b, err := os.ReadFile(svcLog)
		if err != nil {
			t.Fatal(err)
		}
		passes := strings.Count(string(b), "msg=sync")
		if passes < 2 || !strings.Contains(string(b), "removed=ghost") || !strings.Contains(string(b), "added=b2") {
			t.Errorf("%d passes; the service's log:\n%s", passes, b)
		}
	})

	l.run("timings", func(t *testing.T) {
		// sync with nothing to do, as a whole process and as it logs.
		const n = 15
		var wall, took []time.Duration
		for range n {
			r := l.sync()
			wantRun(t, r, 0, "", "result=unchanged")
			wall, took = append(wall, r.took), append(took, tookOf(t, r.stderr))
		}
		t.Logf("sync, nothing to do (%d runs, 3 backends + the balancer): process %v median (max %v), took= %v median (max %v)",
			n, median(wall), slices.Max(wall), median(took), slices.Max(took))

		// The cost of --reconcile on an event: the same no-op update event
		// run as Serf runs it, with and without.
		ev := []string{"SERF_EVENT=member-update", "SERF_SELF_NAME=lb", "SERF_SELF_ROLE=lb", "SERF_TAG_ROLE=lb",
			"SERF_HB_RPC_ADDR=" + lbRPC, "SERF_HB_RPC_AUTH=" + authKey}
		line := "b2\t127.0.2.12\tbackend\tport=3002,role=backend\n"
		var plain, recon, plainWall, reconWall []time.Duration
		for range n {
			r := l.serfHB(line, ev)
			wantRun(t, r, 0, "", "result=unchanged")
			plain, plainWall = append(plain, tookOf(t, r.stderr)), append(plainWall, r.took)
			r = l.serfHB(line, ev, "--reconcile")
			wantRun(t, r, 0, "", "reconcile=ok", "result=unchanged")
			recon, reconWall = append(recon, tookOf(t, r.stderr)), append(reconWall, r.took)
		}
		over := median(recon) - median(plain)
		t.Logf("no-op member-update event (%d runs each): took= %v median without --reconcile, %v with (+%v); process %v vs %v",
			n, median(plain), median(recon), over, median(plainWall), median(reconWall))
		if over > 100*time.Millisecond {
			t.Errorf("--reconcile adds %v to an event run; the agent answers in a few ms", over)
		}
	})
}
