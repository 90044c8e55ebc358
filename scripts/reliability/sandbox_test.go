package reliability

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/serf-hb/serf-hb/scripts/internal/harness"
)

// The sandbox: TestMain (harness.Main) builds serf-hb once; every test
// works in a sandbox of its own (registry, output directory, fake
// commands' records) and runs the binary as a separate process per event.

var (
	toolsDir string // the fake commands, first on $PATH
	// header is the rendered output of an empty registry without its
	// trailer: every complete output is header + server lines + trailer.
	header string
	// trailerTmpl is the embedded default template plus a last line that
	// counts the servers, so that any snapshot of the output can be told
	// complete or not.
	trailerTmpl []byte
	heavy       = os.Getenv("SERF_HB_HEAVY") == "1"
	basePath    = os.Getenv("PATH")
)

// serfHB is the binary under test: under go test -race a race build, so
// the concurrency tests check serf-hb itself, not only this sandbox.
func serfHB() string { return harness.Bin("serf-hb") }

func TestMain(m *testing.M) {
	os.Exit(harness.Main(m, harness.Suite{
		Name:  "reliability",
		Needs: []string{"haproxy", "s6-svc", "sh", "grep", "cat", "mv", "sleep", "kill"},
		Race:  true,
		Setup: func(dir string) error {
			toolsDir = filepath.Join(dir, "tools")
			if err := writeTools(toolsDir); err != nil {
				return err
			}
			return makeHeader(dir)
		},
		Done: writeReport,
	}))
}

// The fake commands. Each one that stands for a reload or a check leaves a
// start and an end marker named after $RELTEST_ID (the run that started it)
// so that a test can wait for the orphans of a killed run to finish.
var tools = map[string]string{
	// record OUT DIR: a reload. It keeps a copy of the file a reload would
	// load, as DIR/rec.SEQ.$RELTEST_ID.$$ (written under a temp name and
	// renamed, so a copy is never seen half-written). SEQ orders the
	// reloads: they run one at a time under serf-hb's lock (and the tests
	// wait for a killed run's orphans before the next run), whereas mtimes
	// can tie within a clock tick.
	"record": `#!/bin/sh
id=${RELTEST_ID:-x}
: > "$2/.start.$id.$$"
read seq < "$2/.seq" 2>/dev/null || seq=0
seq=$((seq + 1))
echo $seq > "$2/.seq"
rec=$(printf 'rec.%09d.%s.%s' $seq "$id" $$)
cat "$1" > "$2/.tmp.$id.$$" && mv "$2/.tmp.$id.$$" "$2/$rec"
rc=$?
: > "$2/.end.$id.$$"
exit $rc
`,
	// check-complete FILE DIR: a cheap check: the staged file must end
	// with the trailer line.
	"check-complete": `#!/bin/sh
id=${RELTEST_ID:-x}
: > "$2/.start.$id.$$"
grep -q '^# end: [0-9]* servers$' "$1"
rc=$?
: > "$2/.end.$id.$$"
[ $rc = 0 ] || echo "check-complete: $1 has no trailer" >&2
exit $rc
`,
	// check-haproxy FILE DIR: the real check, haproxy -c (@HAPROXY@ is
	// the suite's HAProxy, harness.Bin).
	"check-haproxy": `#!/bin/sh
id=${RELTEST_ID:-x}
: > "$2/.start.$id.$$"
@HAPROXY@ -c -f "$1"
rc=$?
: > "$2/.end.$id.$$"
exit $rc
`,
	// fail MESSAGE: a command that refuses, saying why.
	"fail": `#!/bin/sh
echo "$1" >&2
exit 3
`,
	// hang PIDFILE: a command that never ends by itself; it writes its
	// PID first so the test can tell whether it was killed.
	"hang": `#!/bin/sh
echo $$ > "$1"
exec sleep 300
`,
}

func writeTools(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, body := range tools {
		body = strings.ReplaceAll(body, "@HAPROXY@", shellJoin(harness.Bin("haproxy")))
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o755); err != nil {
			return err
		}
	}
	return nil
}

func makeHeader(dir string) error {
	tmpl, err := exec.Command(serfHB(), "template").Output()
	if err != nil {
		return fmt.Errorf("serf-hb template: %v", err)
	}
	trailerTmpl = append(tmpl, "# end: {{ nodes|length }} servers\n"...)
	tp := filepath.Join(dir, "trailer.tmpl")
	if err := os.WriteFile(tp, trailerTmpl, 0o644); err != nil {
		return err
	}
	nodes := filepath.Join(dir, "empty-nodes")
	if err := os.Mkdir(nodes, 0o755); err != nil {
		return err
	}
	out, err := exec.Command(serfHB(), "render", "--dry-run", "--nodes-dir", nodes,
		"--template", tp, "--output", filepath.Join(dir, "none.cfg"), "--reload", "").Output()
	if err != nil {
		return fmt.Errorf("render an empty registry: %v", err)
	}
	h, ok := strings.CutSuffix(string(out), "# end: 0 servers\n")
	if !ok {
		return fmt.Errorf("render of an empty registry does not end with the trailer:\n%s", out)
	}
	header = h
	return nil
}

// sandbox is one test's world: a registry, an output file, and the records
// of the fake commands.
type sandbox struct {
	t       testing.TB
	root    string
	nodes   string // registry (--nodes-dir)
	outDir  string
	out     string // --output
	recs    string // reload records (the "record" fake)
	marks   string // start/end markers of checks
	tmpl    string // --template; "" for the embedded default
	check   string // --check
	reload  string // --reload
	path    string // $PATH for serf-hb
	extra   []string
	env     []string
	cred    *syscall.Credential // run serf-hb as this user
	timeout time.Duration       // per run
}

type sandboxOpt func(*sandbox)

// withDefaultTemplate uses the embedded template instead of the trailer one.
func withDefaultTemplate(s *sandbox) { s.tmpl = "" }

// withHaproxyCheck makes the check the real haproxy -c.
func withHaproxyCheck(s *sandbox) {
	s.check = shellJoin(filepath.Join(toolsDir, "check-haproxy"), "{}", s.marks)
}

func newSandbox(t testing.TB, opts ...sandboxOpt) *sandbox {
	t.Helper()
	root := t.TempDir()
	s := &sandbox{
		t:       t,
		root:    root,
		nodes:   filepath.Join(root, "nodes"),
		outDir:  filepath.Join(root, "out"),
		recs:    filepath.Join(root, "reloads"),
		marks:   filepath.Join(root, "marks"),
		tmpl:    filepath.Join(root, "trailer.tmpl"),
		path:    toolsDir + string(os.PathListSeparator) + basePath,
		timeout: 60 * time.Second,
	}
	s.out = filepath.Join(s.outDir, "haproxy.cfg")
	for _, d := range []string{s.nodes, s.outDir, s.recs, s.marks} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(s.tmpl, trailerTmpl, 0o644); err != nil {
		t.Fatal(err)
	}
	s.check = shellJoin(filepath.Join(toolsDir, "check-complete"), "{}", s.marks)
	s.reload = shellJoin(filepath.Join(toolsDir, "record"), s.out, s.recs)
	for _, o := range opts {
		o(s)
	}
	return s
}

func shellJoin(words ...string) string {
	q := make([]string, len(words))
	for i, w := range words {
		if w == "{}" || regexp.MustCompile(`^[A-Za-z0-9_./:=-]+$`).MatchString(w) {
			q[i] = w
		} else {
			q[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
		}
	}
	return strings.Join(q, " ")
}

// result is one finished serf-hb run.
type result struct {
	code   int // exit status; -1 when killed by a signal
	stderr string
	stdout string
	took   time.Duration
	// peakRSS is the process's peak resident set in bytes, sampled.
	peakRSS int64
}

// command returns the command for one run. ev is SERF_EVENT ("" for a
// subcommand given in args); id names the run in the fakes' markers.
func (s *sandbox) command(ctx context.Context, ev, id string, args ...string) *exec.Cmd {
	argv := append([]string{}, args...)
	argv = append(argv, "--nodes-dir", s.nodes, "--output", s.out, "--check", s.check, "--reload", s.reload,
		"--role", "backend", "--check-timeout", "20s", "--reload-timeout", "20s", "--lock-timeout", "50s")
	if s.tmpl != "" {
		argv = append(argv, "--template", s.tmpl)
	}
	argv = append(argv, s.extra...)
	cmd := exec.CommandContext(ctx, serfHB(), argv...)
	// A clean environment: no SERF_HB_* from the caller's.
	cmd.Env = append([]string{
		"PATH=" + s.path,
		"HOME=" + s.root,
		"SERF_SELF_NAME=lb",
		"SERF_SELF_ROLE=balancer",
		"SERF_TAG_ROLE=balancer",
		"RELTEST_ID=" + id,
	}, s.env...)
	if ev != "" {
		cmd.Env = append(cmd.Env, "SERF_EVENT="+ev)
	}
	if harness.RaceEnabled {
		// A race build waits a second before exiting, for reports; a
		// race it finds still makes it exit 66, which fails the test.
		cmd.Env = append(cmd.Env, "GORACE=atexit_sleep_ms=0")
	}
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// run runs serf-hb to the end.
func (s *sandbox) run(ev string, stdin []byte, args ...string) result {
	s.t.Helper()
	return s.runID(ev, "run", stdin, args...)
}

func (s *sandbox) runID(ev, id string, stdin []byte, args ...string) result {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	cmd := s.command(ctx, ev, id, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Start()
	var peak func() int64
	if err == nil {
		done := make(chan struct{})
		peak = peakRSS(cmd.Process.Pid, done)
		err = cmd.Wait()
		close(done)
	}
	r := result{stderr: stderr.String(), stdout: stdout.String(), took: time.Since(start)}
	if peak != nil {
		r.peakRSS = peak()
	}
	if ctx.Err() != nil {
		s.t.Fatalf("serf-hb %s did not finish within %v; stderr:\n%s", strings.Join(cmd.Args[1:], " "), s.timeout, r.stderr)
	}
	r.code = exitCode(cmd, err)
	if r.code == -2 {
		s.t.Fatalf("run serf-hb: %v", err)
	}
	return r
}

// peakRSS samples the VmHWM (peak resident set) of a started process every
// millisecond until done is closed, and returns the last value seen, in
// bytes. The rusage that wait4 returns cannot serve: os/exec starts
// children with CLONE_VM, and on exec Linux folds the parent's (this test
// binary's) peak into the child's ru_maxrss.
func peakRSS(pid int, done <-chan struct{}) func() int64 {
	var peak atomic.Int64
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		p := fmt.Sprintf("/proc/%d/status", pid)
		for {
			if b, err := os.ReadFile(p); err == nil {
				for _, l := range strings.Split(string(b), "\n") {
					if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
						var kib int64
						fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(v), " kB"), &kib)
						if kib<<10 > peak.Load() {
							peak.Store(kib << 10)
						}
					}
				}
			}
			select {
			case <-done:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	return func() int64 {
		<-stopped
		return peak.Load()
	}
}

// exitCode returns the exit status of a finished command, -1 when a signal
// ended it, -2 when it could not run.
func exitCode(cmd *exec.Cmd, err error) int {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return -1
		}
		return ee.ExitCode()
	}
	return -2
}

// mustRun runs serf-hb and fails the test unless it exits with want.
func (s *sandbox) mustRun(want int, ev string, stdin []byte, args ...string) result {
	s.t.Helper()
	r := s.run(ev, stdin, args...)
	if r.code != want {
		s.t.Fatalf("serf-hb %s (SERF_EVENT=%s) exited %d, want %d; stderr:\n%s", strings.Join(args, " "), ev, r.code, want, r.stderr)
	}
	return r
}

// joinLines returns member lines for names, of role backend, with
// addresses in 127.0.3.0/24 (data only: nothing connects to them).
func joinLines(names ...string) []byte {
	var b bytes.Buffer
	for _, n := range names {
		fmt.Fprintf(&b, "%s\t%s\tbackend\trole=backend,port=3000\n", n, addrOf(n))
	}
	return b.Bytes()
}

// addrOf derives a stable address from a name.
func addrOf(name string) string {
	h := 0
	for _, c := range name {
		h = h*31 + int(c)
	}
	if h < 0 {
		h = -h
	}
	return fmt.Sprintf("127.0.3.%d", h%250+1)
}

func nodeNames(prefix string, from, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%03d", prefix, from+i)
	}
	return out
}

var serverLine = regexp.MustCompile(`^    server ([A-Za-z0-9_.:-]+) ([0-9a-fA-F.:]+):([0-9]+) check$`)

// parseOutput checks that b is a complete output of the trailer template
// (header, well-formed server lines sorted by name, a trailer that counts
// them) and returns the server names.
func parseOutput(b []byte) ([]string, error) {
	s := string(b)
	rest, ok := strings.CutPrefix(s, header)
	if !ok {
		return nil, fmt.Errorf("output does not start with the template's header (%d bytes)", len(b))
	}
	if !strings.HasSuffix(rest, "\n") {
		return nil, fmt.Errorf("output does not end with a newline (%d bytes)", len(b))
	}
	lines := strings.Split(strings.TrimSuffix(rest, "\n"), "\n")
	last := lines[len(lines)-1]
	var n int
	if _, err := fmt.Sscanf(last, "# end: %d servers", &n); err != nil || last != fmt.Sprintf("# end: %d servers", n) {
		return nil, fmt.Errorf("output's last line %q is not the trailer (%d bytes)", last, len(b))
	}
	servers := lines[:len(lines)-1]
	if len(servers) != n {
		return nil, fmt.Errorf("output has %d server lines, its trailer says %d", len(servers), n)
	}
	names := make([]string, len(servers))
	for i, l := range servers {
		m := serverLine.FindStringSubmatch(l)
		if m == nil {
			return nil, fmt.Errorf("output line %q is not a server line", l)
		}
		names[i] = m[1]
		if i > 0 && names[i-1] >= names[i] {
			return nil, fmt.Errorf("output servers not sorted or not unique: %q then %q", names[i-1], names[i])
		}
	}
	return names, nil
}

// outputNames reads and checks the output file.
func (s *sandbox) outputNames() ([]string, error) {
	b, err := os.ReadFile(s.out)
	if err != nil {
		return nil, err
	}
	return parseOutput(b)
}

// readRegistry reads the registry the way an outside observer would
// (harness.ReadRegistry): every non-dot entry must be a complete node file
// as serf-hb writes it, "NAME ADDR" then a JSON line. Temps lists the dot
// files other than the lock and the index.
func readRegistry(dir string) (harness.Registry, error) {
	r, err := harness.ReadRegistry(dir)
	if err != nil {
		return r, err
	}
	if lab := r.Lab(); len(lab) > 0 {
		return r, fmt.Errorf("registry file %s is not a complete node file: no metadata line: %q", lab[0], r.Nodes[lab[0]].Data)
	}
	return r, nil
}

// tempFiles lists the dot files in the output directory.
func (s *sandbox) outTemps() []string {
	entries, _ := os.ReadDir(s.outDir)
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			out = append(out, e.Name())
		}
	}
	return out
}

// record is one reload seen by the "record" fake.
type record struct {
	name    string
	id      string // RELTEST_ID of the serf-hb run that reloaded
	content []byte
}

// records returns the reloads recorded so far, oldest first.
func (s *sandbox) records() []record {
	s.t.Helper()
	entries, err := os.ReadDir(s.recs)
	if err != nil {
		s.t.Fatal(err)
	}
	var out []record
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, "rec.") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(s.recs, name))
		if err != nil {
			s.t.Fatal(err)
		}
		f := strings.Split(name, ".") // rec SEQ ID PID
		if len(f) != 4 {
			s.t.Fatalf("reload record %s: unexpected name", name)
		}
		out = append(out, record{name: name, id: f[2], content: b})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name }) // SEQ is zero-padded
	return out
}

// clearRecords deletes the reload records (to keep a long test's
// directory small).
func (s *sandbox) clearRecords() {
	entries, _ := os.ReadDir(s.recs)
	for _, e := range entries {
		os.Remove(filepath.Join(s.recs, e.Name()))
	}
}

// settle waits until every fake started for run id has finished: the
// orphans of a killed run keep going on their own.
func (s *sandbox) settle(dirs []string, id string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		open := 0
		for _, dir := range dirs {
			entries, _ := os.ReadDir(dir)
			have := map[string]bool{}
			for _, e := range entries {
				have[e.Name()] = true
			}
			for n := range have {
				if rest, ok := strings.CutPrefix(n, ".start."+id+"."); ok && !have[".end."+id+"."+rest] {
					open++
				}
			}
		}
		if open == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d fake command(s) of run %s still running after %v", open, id, limit)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// haproxyCheck runs the real haproxy -c on path.
func haproxyCheck(path string) error {
	out, err := exec.Command(harness.Bin("haproxy"), "-c", "-f", path).CombinedOutput()
	if err != nil {
		return fmt.Errorf("haproxy -c -f %s: %v: %s", path, err, out)
	}
	return nil
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	x := append([]string(nil), a...)
	y := append([]string(nil), b...)
	sort.Strings(x)
	sort.Strings(y)
	for i := range x {
		if x[i] != y[i] {
			return false
		}
	}
	return true
}

// The figures every test reports, printed at the end of a -v run and
// written to $SERF_HB_REPORT as a markdown table.
var (
	reportMu   sync.Mutex
	reportRows []string
)

// report adds a row: test, trials, what was checked, result.
func report(t testing.TB, trials, checked, result string) {
	t.Helper()
	t.Logf("figures: %s | %s | %s", trials, checked, result)
	reportMu.Lock()
	defer reportMu.Unlock()
	reportRows = append(reportRows, fmt.Sprintf("| %s | %s | %s | %s |", t.Name(), trials, checked, result))
}

func writeReport() error {
	reportMu.Lock()
	defer reportMu.Unlock()
	if len(reportRows) == 0 {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "serf-hb reliability figures (%s, GOMAXPROCS=%d, heavy=%v, race=%v)\n\n", time.Now().UTC().Format(time.RFC3339), runtime.GOMAXPROCS(0), heavy, harness.RaceEnabled)
	b.WriteString("| test | trials | checked | result |\n|---|---|---|---|\n")
	for _, r := range reportRows {
		b.WriteString(r + "\n")
	}
	if testing.Verbose() {
		fmt.Print("\n" + b.String())
	}
	if p := os.Getenv("SERF_HB_REPORT"); p != "" {
		return os.WriteFile(p, []byte(b.String()), 0o644)
	}
	return nil
}

// durations summarises run times.
type durations []time.Duration

func (d durations) pct(p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	x := append(durations(nil), d...)
	sort.Slice(x, func(i, j int) bool { return x[i] < x[j] })
	i := int(p * float64(len(x)-1))
	return x[i]
}

func (d durations) String() string {
	return fmt.Sprintf("p50 %v, p99 %v, max %v", d.pct(0.5).Round(time.Millisecond), d.pct(0.99).Round(time.Millisecond), d.pct(1).Round(time.Millisecond))
}

// reloadPending reports whether the registry marks a reload as due: the
// flag line serf-hb keeps in its lock file.
func reloadPending(nodes string) bool {
	b, _ := os.ReadFile(filepath.Join(nodes, ".lock"))
	return slices.Contains(strings.Fields(string(b)), "reload-pending")
}
