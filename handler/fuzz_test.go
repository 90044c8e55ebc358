package handler_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kballard/go-shellquote"
	"github.com/serf-hb/serf-hb/handler/serfevent"

	"github.com/serf-hb/serf-hb/handler"
	"github.com/serf-hb/serf-hb/internal/haproxytest"
	"github.com/serf-hb/serf-hb/nodestore"
	"github.com/serf-hb/serf-hb/render"
)

// The whole-path fuzz targets: stdin -> parse -> registry -> render ->
// install, in process, through the same entry points the binary uses
// (Handle and Render). The single-line parser has its own target,
// FuzzParseLine, in event_test.go. Seeds: the f.Add calls below, every
// captured Serf invocation under ../testdata/captures, and the files under
// testdata/fuzz/FuzzX/. scripts/fuzz.sh runs every target for a bounded
// time.

var events = []string{
	"member-join", "member-update", "member-leave", "member-failed", "member-reap",
	"user", "query", "", "member-bogus",
}

// fuzzing reports whether this is a -fuzz run (not the seed corpus run of
// a plain go test).
func fuzzing() bool {
	f := flag.Lookup("test.fuzz")
	return f != nil && f.Value.String() != ""
}

// haproxyValid runs the real haproxy -c on path. It runs on the seed
// corpus only: at fuzzing speed the strict line check stands in for it.
func haproxyValid(t *testing.T, path string) {
	t.Helper()
	if fuzzing() {
		return
	}
	out, err := exec.Command(haproxytest.Require(t, "handler"), "-c", "-f", path).CombinedOutput()
	if err != nil {
		b, _ := os.ReadFile(path)
		t.Fatalf("haproxy -c refused the rendered file: %v\n%s\n%s", err, out, b)
	}
}

var (
	emptyOutput []byte // the default template rendered with no nodes
	serverRE    = regexp.MustCompile(`^    server (\S+) (\S+)(?: weight (?:25[0-6]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9]))? check$`)
)

func init() {
	tpl, err := render.Default()
	if err != nil {
		panic(err)
	}
	emptyOutput, err = tpl.Execute(render.Data{Role: "backend"})
	if err != nil {
		panic(err)
	}
}

// checkOutput checks a file rendered by the default template: the static
// text, then one well-formed server line per node in want (name order),
// each a line HAProxy accepts: a server name of [A-Za-z0-9_.:-], an IP
// address without a zone, a port from 1 to 65535.
func checkOutput(t *testing.T, b []byte, want []string) {
	t.Helper()
	rest, ok := bytes.CutPrefix(b, emptyOutput)
	if !ok {
		t.Fatalf("output does not start with the template's static text:\n%s", b)
	}
	lines := strings.Split(strings.TrimSuffix(string(rest), "\n"), "\n")
	if len(rest) == 0 {
		lines = nil
	}
	if len(lines) != len(want) {
		t.Fatalf("output has %d server lines, the registry %d nodes:\n%s", len(lines), len(want), rest)
	}
	for i, l := range lines {
		m := serverRE.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("output line %q is not a server line", l)
		}
		if m[1] != want[i] || nodestore.ValidName(m[1]) != nil {
			t.Fatalf("server %q, want %q (a valid name)", m[1], want[i])
		}
		ap, err := netip.ParseAddrPort(bracket(m[2]))
		if err != nil || ap.Addr().Zone() != "" || ap.Port() == 0 {
			t.Fatalf("server %s: address %q is not IP:PORT HAProxy accepts (%v)", m[1], m[2], err)
		}
	}
}

// bracket turns HAProxy's "::1:3000" into "[::1]:3000" for ParseAddrPort.
func bracket(s string) string {
	i := strings.LastIndexByte(s, ':')
	if i < 0 || !strings.Contains(s[:i], ":") {
		return s
	}
	return "[" + s[:i] + "]" + s[i:]
}

// registry lists the registry directory, failing on anything but node
// files with valid names and serf-hb's own dot files.
func registry(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		n := e.Name()
		if n == ".lock" || n == ".index" {
			continue
		}
		if err := nodestore.ValidName(n); err != nil || !e.Type().IsRegular() {
			t.Fatalf("registry holds %q (%v, %v)", n, e.Type(), err)
		}
		names = append(names, n)
	}
	return names // ReadDir sorts by name, as render does
}

// onlyTheseEntries fails when dir holds anything but names.
func onlyTheseEntries(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		ok := false
		for _, n := range names {
			ok = ok || e.Name() == n
		}
		if !ok {
			t.Fatalf("%s holds %q: something was written outside the registry", dir, e.Name())
		}
	}
}

func env(ev string) (func(string) string, func() []string) {
	vars := map[string]string{
		"SERF_EVENT": ev, "SERF_SELF_NAME": "lb", "SERF_SELF_ROLE": "balancer", "SERF_TAG_ROLE": "balancer",
	}
	if ev == "" {
		delete(vars, "SERF_EVENT")
	}
	return func(k string) string { return vars[k] }, func() []string {
		var out []string
		for k, v := range vars {
			out = append(out, k+"="+v)
		}
		return out
	}
}

// expect is the oracle: the registry after an event, from the event's own
// lines (what the contract says, independently of how handleMembers does
// it): joins and updates of the role put, every other member line of a
// member event removes; the agent itself is never registered.
func expect(ev string, before []string, stdin []byte) []string {
	set := map[string]bool{}
	for _, n := range before {
		set[n] = true
	}
	switch ev {
	case "member-join", "member-update", "member-leave", "member-failed", "member-reap":
	default:
		return before
	}
	members, _, err := serfevent.ReadMembers(bytes.NewReader(stdin))
	if err != nil {
		return nil
	}
	puts, removes := map[string]bool{}, map[string]bool{}
	for _, m := range members {
		if m.Name == "lb" || nodestore.ValidName(m.Name) != nil {
			continue
		}
		ours := m.Role == "backend"
		switch {
		case (ev == "member-join" || ev == "member-update") && ours:
			if m.Addr.IsValid() {
				puts[m.Name] = true
			}
		case ev == "member-join":
		default:
			removes[m.Name] = true
		}
	}
	for n := range puts {
		set[n] = true
	}
	for n := range removes {
		delete(set, n)
	}
	var out []string
	for n := range set {
		out = append(out, n)
	}
	sortStrings(out)
	return out
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// seedLines are hostile and ordinary member lines for the seed corpus.
var seedLines = []string{
	"web1\t127.0.3.1\tbackend\trole=backend,port=3000\n",
	"web2\t::1\tbackend\tport=8080\nweb3\t::ffff:127.0.3.3\tbackend\t\n",
	"../victim\t127.0.3.4\tbackend\t\n*\t127.0.3.5\tbackend\t\n",
	"web 1\t127.0.3.6\tbackend\t\n" + `web\t2` + "\t127.0.3.7\tbackend\t\n",
	"x\tnot-an-ip\tbackend\t\ny\t999.1.1.1\tbackend\t\nz\t\tbackend\t\n",
	"t\t127.0.3.8\tbackend\tnote=a,b=c,x={{ self.name }},y={% for n in nodes %}\n",
	"p\t127.0.3.9\tbackend\t" + `port=80\n    bind *:81` + "\n",
	"crlf\t127.0.3.10\tbackend\t\r\nlast\t127.0.3.11\tbackend\t",
	"nul\x00\t127.0.3.12\tbackend\t\n\xff\xfe\t127.0.3.13\tbackend\t\n",
	"lb\t127.0.3.14\tbalancer\trole=balancer\n",
	"v6zone\tfe80::1%eth0\tbackend\t\n",
	"-lead\t127.0.3.15\tbackend\t\n.dot\t127.0.3.16\tbackend\t\n",
	"canary\t127.0.3.17\tbackend canary\t\ncr\t127.0.3.18\tbackend\r\t\n",
	"web1\t127.0.3.1\tfrontend\t\n",
}

// captures returns every captured Serf invocation: SERF_EVENT and stdin.
func captures(f *testing.F) [][2]string {
	paths, _ := filepath.Glob("../testdata/captures/*/*.stdin")
	var out [][2]string
	for _, p := range paths {
		stdin, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		envb, _ := os.ReadFile(strings.TrimSuffix(p, ".stdin") + ".env")
		ev := ""
		// NUL-separated, as in /proc/PID/environ.
		for _, kv := range strings.Split(string(envb), "\x00") {
			kv = strings.TrimSpace(kv)
			if v, ok := strings.CutPrefix(kv, "SERF_EVENT="); ok {
				ev = v
			}
		}
		out = append(out, [2]string{ev, string(stdin)})
	}
	return out
}

// FuzzHandle runs one event (the event chosen by the first argument) with
// the fuzzed stdin against a registry of two nodes, then checks: the run
// ended with an error or not, never a panic; the registry holds exactly
// what the contract says and nothing else was written; the output lists
// exactly the registry in well-formed server lines.
func FuzzHandle(f *testing.F) {
	for i, s := range seedLines {
		f.Add(uint8(i%5), []byte(s))
	}
	for _, c := range captures(f) {
		for i, ev := range events {
			if ev == c[0] {
				f.Add(uint8(i), []byte(c[1]))
			}
		}
	}
	f.Fuzz(func(t *testing.T, evIndex uint8, stdin []byte) {
		ev := events[int(evIndex)%len(events)]
		root := t.TempDir()
		nodes, outDir := filepath.Join(root, "nodes"), filepath.Join(root, "out")
		for _, d := range []string{nodes, outDir} {
			if err := os.Mkdir(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		// Two nodes registered beforehand, in the lab's plain layout.
		before := []string{"old1", "old2"}
		for i, n := range before {
			if err := os.WriteFile(filepath.Join(nodes, n), fmt.Appendf(nil, "%s 127.0.3.%d\n", n, 100+i), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		out := filepath.Join(outDir, "haproxy.cfg")
		getenv, environ := env(ev)
		var stderr bytes.Buffer
		cfg := handler.Config{
			NodesDir: nodes, Output: out, Roles: []string{"backend"},
			Stdin: bytes.NewReader(stdin), Stdout: io.Discard, Stderr: &stderr,
			Getenv: getenv, Environ: environ, LockTimeout: 10 * time.Second,
			CheckTimeout: time.Minute, ReloadTimeout: time.Minute, RPCTimeout: time.Second, ReconcileTimeout: time.Second,
		}
		err := handler.Handle(context.Background(), cfg)
		code := handler.ExitCode(err)
		switch {
		case err == nil:
		case code == handler.ExitRejected:
			if !strings.Contains(stderr.String(), "level=WARN msg=rejected line=") {
				t.Fatalf("exit 3 without a WARN line naming the rejected line:\n%s", stderr.String())
			}
		case code == handler.ExitUsage && (ev == "" || ev == "member-bogus"):
		default:
			t.Fatalf("Handle(%s) = %v\n%s", ev, err, stderr.String())
		}
		if code != handler.ExitUsage {
			if n := strings.Count(stderr.String(), "\n") - strings.Count(stderr.String(), "level=WARN"); n != 1 {
				t.Fatalf("%d summary lines, want 1:\n%s", n, stderr.String())
			}
		}
		onlyTheseEntries(t, root, "nodes", "out")
		onlyTheseEntries(t, outDir, "haproxy.cfg")
		got := registry(t, nodes)
		want := expect(ev, before, stdin)
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("registry after %s = %q, want %q", ev, got, want)
		}
		b, rerr := os.ReadFile(out)
		switch {
		case errors.Is(rerr, os.ErrNotExist) && (ev == "user" || ev == "query" || code == handler.ExitUsage):
			return // nothing to render for these
		case rerr != nil:
			t.Fatal(rerr)
		}
		checkOutput(t, b, got)
		haproxyValid(t, out)
	})
}

// FuzzRender renders a registry holding fuzzed files (a name and its
// content, twice) next to one good node: Render must either succeed with
// well-formed server lines for exactly the registry's nodes, or fail with
// an error and leave no output behind; never panic.
func FuzzRender(f *testing.F) {
	f.Add("web1", []byte("web1 127.0.3.1\n{\"role\":\"backend\",\"tags\":{\"port\":\"8080\"}}\n"), "web2", []byte("web2 ::1\n"))
	f.Add("a", []byte("a fe80::1%eth0\n"), "b", []byte("b ::ffff:127.0.3.2\n"))
	f.Add("c", []byte("c 127.0.3.3\n{\"tags\":{\"port\":\"80 check backup\"}}\n"), "d", []byte("d 127.0.3.4 extra\n"))
	f.Add("e", []byte(""), "f", []byte("f 127.0.3.5\n{not json\n"))
	f.Add("g", []byte("h 127.0.3.6\n"), "web*", []byte("web* 127.0.3.7\n"))
	f.Add("-x", []byte("-x 127.0.3.8\n{\"role\":\"x\",\"tags\":{\"port\":\"65535\"}}"), ".hidden", []byte("junk"))
	f.Add("i", []byte("i\t127.0.3.9\r\n"), "j", []byte("j 1.2.3.4\n{\"tags\":{\"port\":\"0\"}}\n"))
	f.Fuzz(func(t *testing.T, name1 string, content1 []byte, name2 string, content2 []byte) {
		root := t.TempDir()
		nodes, outDir := filepath.Join(root, "nodes"), filepath.Join(root, "out")
		for _, d := range []string{nodes, outDir} {
			if err := os.Mkdir(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(nodes, "good"), []byte("good 127.0.3.200\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, nc := range []struct {
			name    string
			content []byte
		}{{name1, content1}, {name2, content2}} {
			// Only names that are one path element can be written; the
			// rest says nothing about serf-hb.
			if nc.name == "" || nc.name == "." || nc.name == ".." || nc.name == "good" || nc.name == ".lock" ||
				strings.ContainsAny(nc.name, "/\x00") || len(nc.name) > 200 {
				return
			}
			if err := os.WriteFile(filepath.Join(nodes, nc.name), nc.content, 0o644); err != nil {
				return
			}
		}
		out := filepath.Join(outDir, "haproxy.cfg")
		getenv, environ := env("")
		var stderr bytes.Buffer
		cfg := handler.Config{
			NodesDir: nodes, Output: out, Roles: []string{"backend"},
			Stdin: bytes.NewReader(nil), Stdout: io.Discard, Stderr: &stderr,
			Getenv: getenv, Environ: environ, LockTimeout: 10 * time.Second,
			CheckTimeout: time.Minute, ReloadTimeout: time.Minute, RPCTimeout: time.Second, ReconcileTimeout: time.Second,
		}
		err := handler.Render(context.Background(), cfg, handler.RenderOptions{})
		onlyTheseEntries(t, outDir, "haproxy.cfg")
		// A stray entry is skipped and named with a hint, the others are
		// published, exit 3; a registry that cannot be listed at all
		// fails the run and writes nothing.
		skipped := map[string]bool{}
		switch code := handler.ExitCode(err); {
		case code == handler.ExitRejected:
			for _, l := range strings.Split(stderr.String(), "\n") {
				if !strings.Contains(l, "msg=skipped") {
					continue
				}
				if !strings.Contains(l, "registry entry") || !strings.Contains(l, "hint: move it out of the registry: mv ") {
					t.Fatalf("skipped entry without its name and hint: %s", l)
				}
				p, ok := skippedPath(l)
				if !ok {
					t.Fatalf("skipped entry whose hint names no path a shell reads back: %s", l)
				}
				for _, e := range mustReadDir(t, nodes) {
					if p == filepath.Join(nodes, e) {
						skipped[e] = true
					}
				}
			}
			if len(skipped) == 0 {
				t.Fatalf("exit 3 without a skipped entry:\n%s", stderr.String())
			}
		case code == handler.ExitFailure && strings.Contains(stderr.String(), "list registry"):
			if _, serr := os.Stat(out); serr == nil {
				t.Fatalf("Render failed (%v) but wrote the output", err)
			}
			return
		case err != nil:
			t.Fatalf("Render failed with %v (want 0, or 3 naming each skipped entry):\n%s", err, stderr.String())
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, e := range mustReadDir(t, nodes) {
			if !skipped[e] {
				want = append(want, e)
			}
		}
		checkOutput(t, b, want)
		// The port is the node's "port" tag only when it is a plain
		// number from 1 to 65535.
		for _, l := range strings.Split(string(b), "\n") {
			if m := serverRE.FindStringSubmatch(l); m != nil {
				p := m[2][strings.LastIndexByte(m[2], ':')+1:]
				if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != p {
					t.Fatalf("server line %q: bad port", l)
				}
			}
		}
		haproxyValid(t, out)
	})
}

// mustReadDir lists the names in dir that are not dotfiles.
func mustReadDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") {
			names = append(names, e.Name())
		}
	}
	return names
}

// skippedPath is the registry path a "skipped" log line names, read back
// from its hint (`mv PATH /tmp/`, inside slog's quoted err value) by an
// outside shell-word parser, go-shellquote: the oracle does not share
// nodestore's quoting, so a quoting bug cannot agree with itself.
func skippedPath(line string) (string, bool) {
	const hint = "move it out of the registry: mv "
	i := strings.Index(line, hint)
	if i < 0 {
		return "", false
	}
	rest := line[i+len(hint):]
	// slog escapes every quote inside the value: the first bare one after
	// " /tmp/" ends it.
	j := strings.Index(rest, ` /tmp/"`)
	if j < 0 {
		return "", false
	}
	word, err := strconv.Unquote(`"` + rest[:j] + `"`)
	if err != nil {
		return "", false
	}
	words, err := shellquote.Split(word)
	if err != nil || len(words) != 1 {
		return "", false
	}
	return words[0], true
}

// TestSkippedPath: the fuzz oracle reads back, from a real skipped line,
// the path nodestore names, however it had to quote it.
func TestSkippedPath(t *testing.T) {
	for _, p := range []string{"/r/web1", "/r/a b", "/r/it's", `/r/"q" \ $x`, "/r/é\t\n", "/r/x /tmp/\"y"} {
		var b bytes.Buffer
		err := &nodestore.EntryError{Path: p, Err: errors.New("not a node name")}
		slog.New(slog.NewTextHandler(&b, nil)).Warn("skipped", "err", err)
		if got, ok := skippedPath(b.String()); !ok || got != p {
			t.Errorf("skippedPath(%q) = %q, %v; want %q", b.String(), got, ok, p)
		}
	}
}
