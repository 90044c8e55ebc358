package reliability

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/serf-hb/serf-hb/handler/serfevent"

	"github.com/serf-hb/serf-hb/render"
)

// Hostile and malformed stdin. Each corpus line is sent as line 2 of an
// event, between two valid lines, and the run must: write nothing outside
// the registry, render only well-formed server lines (no directive or
// template code from node data), apply the valid lines, and name the
// rejected line and the reason on stderr.

type verdict int

const (
	accepted verdict = iota // registered as the name given
	rejected                // a WARN line, exit 3
	ignored                 // not ours (another role): exit 0, counted as ignored
)

type hostile struct {
	label string
	line  string  // the raw line, without its newline
	ev    string  // "" is member-join
	want  verdict // what becomes of the line
	why   string  // rejected: the reason on stderr; accepted: the registered name
}

func hostileCorpus() []hostile {
	long := strings.Repeat("n", 300)
	edge := strings.Repeat("e", 234) // nodestore.MaxNameLen
	line := func(name, addr, role, tags string) string {
		return name + "\t" + addr + "\t" + role + "\t" + tags
	}
	b := func(name string) string { return line(name, "127.0.3.50", "backend", "role=backend") }
	return []hostile{
		// Names: every one that is not a plain HAProxy server name is
		// refused before it can become a path or a config word.
		{"name ../", b("../victim"), "", rejected, "starts with a dot"},
		{"name ../../", b("../../victim2"), "", rejected, "starts with a dot"},
		{"name absolute path", b("/tmp/serf-hb-pwned"), "", rejected, `character '/'`},
		{"name a/b", b("a/b"), "", rejected, `character '/'`},
		{"name *", b("*"), "", rejected, `character '*'`},
		{"name web*", b("web*"), "", rejected, `character '*'`},
		{"name ?", b("web?"), "", rejected, `character '?'`},
		{"name with space", b("web 1"), "", rejected, `character ' '`},
		{"name with escaped tab", b(`web\t1`), "", rejected, `character '\t'`},
		{"name with escaped newline", b(`web\nbind *:81`), "", rejected, `character '\n'`},
		{"name with quotes", b(`"quoted"`), "", rejected, `character '"'`},
		{"name with single quote", b(`it's`), "", rejected, `character '\''`},
		{"name &<>", b(`amp&<lt>`), "", rejected, `character '&'`},
		{"name $(...)", b(`$(touch pwned)`), "", rejected, `character '$'`},
		{"name with NUL", b("nul\x00byte"), "", rejected, "NUL"},
		{"name UTF-8", b("wéb"), "", rejected, "is not allowed"},
		{"name CJK", b("节点"), "", rejected, "is not allowed"},
		{"name 300 chars", b(long), "", rejected, "the limit is 234"},
		{"name 234 chars", b(edge), "", accepted, edge},
		{"name leading -", b("-web"), "", accepted, "-web"},
		{"name leading .", b(".hidden"), "", rejected, "starts with a dot"},
		{"name ..", b(".."), "", rejected, "starts with a dot"},
		{"name .lock", b(".lock"), "", rejected, "starts with a dot"},
		{"name empty", b(""), "", rejected, "empty node name"},
		{"name {{ }}", b("{{self.name}}"), "", rejected, `character '{'`},
		// Leaves with hostile names remove nothing else.
		{"leave *", b("*"), "member-leave", rejected, `character '*'`},
		{"leave ../victim", b("../victim"), "member-leave", rejected, "starts with a dot"},
		{"leave .lock", b(".lock"), "member-leave", rejected, "starts with a dot"},
		// Roles: a look-alike of the role is another role.
		{"role with space", line("canary1", "127.0.3.51", "backend canary", ""), "", ignored, ""},
		{"role with CR", line("cr1", "127.0.3.52", "backend\r", ""), "", ignored, ""},
		{"role with escaped newline", line("nl1", "127.0.3.53", `backend\n`, ""), "", ignored, ""},
		// Addresses.
		{"addr not-an-ip", line("web9", "not-an-ip", "backend", ""), "", rejected, "not an IP address"},
		{"addr 999.1.1.1", line("web9", "999.1.1.1", "backend", ""), "", rejected, "not an IP address"},
		{"addr empty", line("web9", "", "backend", ""), "", rejected, "not an IP address"},
		{"addr with zone", line("web9", "fe80::1%eth0", "backend", ""), "", rejected, "not an IP address"},
		{"addr with port", line("web9", "127.0.3.9:80", "backend", ""), "", rejected, "not an IP address"},
		{"addr with space", line("web9", " 127.0.3.9", "backend", ""), "", rejected, "not an IP address"},
		{"addr host name", line("web9", "example.com", "backend", ""), "", rejected, "not an IP address"},
		{"addr v4-mapped v6", line("mapped", "::ffff:127.0.3.54", "backend", ""), "", accepted, "mapped"},
		{"addr v6", line("six", "::1", "backend", ""), "", accepted, "six"},
		// Tags are data: they never reach the config unquoted.
		{"tags with , and =", line("t1", "127.0.3.55", "backend", "note=a,b=c,,=,x==y"), "", accepted, "t1"},
		{"tags with {{", line("t2", "127.0.3.56", "backend", "x={{ self.name }},y={{ nodes }}"), "", accepted, "t2"},
		{"tags with {%", line("t3", "127.0.3.57", "backend", "x={% for n in nodes %}INJ{% endfor %}"), "", accepted, "t3"},
		{"tags with escaped newline", line("t4", "127.0.3.58", "backend", `port=80\n    bind *:81\nlisten x`), "", accepted, "t4"},
		{"port tag with words", line("t5", "127.0.3.59", "backend", "port=3000 check backup"), "", accepted, "t5"},
		{"port tag out of range", line("t6", "127.0.3.60", "backend", "port=65536"), "", accepted, "t6"},
		{"port tag +80", line("t7", "127.0.3.61", "backend", "port=+80"), "", accepted, "t7"},
		{"port tag quote", line("t8", "127.0.3.62", "backend", `port="80"`), "", accepted, "t8"},
		// Framing.
		{"5 fields", "a\t127.0.3.63\tbackend\t\textra", "", rejected, "has 5 tab-separated fields"},
		{"3 fields", "a\t127.0.3.63\tbackend", "", rejected, "has 3 tab-separated fields"},
		{"1 field", "garbage", "", rejected, "has 1 tab-separated fields"},
		{"1 MiB line", b(strings.Repeat("x", 1<<20)), "", rejected, "longer than 65536 bytes"},
		{"invalid UTF-8", b("w\xff\xfe"), "", rejected, "not valid UTF-8"},
		{"CRLF", b("crlf") + "\r", "", accepted, "crlf"},
		{"lone CR inside", b("cr\rin"), "", rejected, `character '\r'`},
	}
}

// snapshot hashes every file under dir.
func snapshot(t *testing.T, dir string) map[string][32]byte {
	t.Helper()
	out := map[string][32]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			out[p+"/"] = [32]byte{}
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out[p] = sha256.Sum256(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// checkConfined fails on any file created, changed or removed under
// filepath.Dir(s.root) other than node files in the registry, the output
// and the fakes' records.
func checkConfined(t *testing.T, s *sandbox, before, after map[string][32]byte) {
	t.Helper()
	allowed := func(p string) bool {
		for _, dir := range []string{s.recs, s.marks} {
			if strings.HasPrefix(p, dir+"/") {
				return true
			}
		}
		if p == s.out || strings.HasPrefix(p, s.outDir+"/.") {
			return true
		}
		if rest, ok := strings.CutPrefix(p, s.nodes+"/"); ok && !strings.Contains(rest, "/") {
			return true
		}
		return false
	}
	for p, h := range after {
		if old, ok := before[p]; (!ok || old != h) && !allowed(p) {
			t.Errorf("%s was created or changed", p)
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok && !allowed(p) {
			t.Errorf("%s was removed", p)
		}
	}
}

// checkRendered checks the output against the registry: complete, every
// server line well-formed, exactly the registered nodes, haproxy -c valid,
// no template code.
func checkRendered(t *testing.T, s *sandbox) []string {
	t.Helper()
	names, err := s.outputNames()
	if err != nil {
		t.Fatalf("output: %v", err)
	}
	reg, err := readRegistry(s.nodes)
	if err != nil {
		t.Fatal(err)
	}
	if !sameSet(names, reg.Names()) {
		t.Fatalf("output servers differ from the registry: %s", diffSets(names, reg.Names()))
	}
	b, _ := os.ReadFile(s.out)
	for _, bad := range []string{"{{", "{%", "INJ", "bind *:81", "listen x"} {
		if bytes.Contains(b, []byte(bad)) {
			t.Errorf("output contains %q", bad)
		}
	}
	if err := haproxyCheck(s.out); err != nil {
		t.Fatal(err)
	}
	return names
}

var warnLine = regexp.MustCompile(`(?m)^time=\S+ level=WARN msg=rejected line=(\d+) .*err=("(?:[^"\\]|\\.)*"|\S+)`)

func TestHostileLines(t *testing.T) {
	var rej, acc, ign int
	start := time.Now()
	for _, h := range hostileCorpus() {
		t.Run(strings.ReplaceAll(h.label, " ", "_"), func(t *testing.T) {
			s := newSandbox(t)
			victim := filepath.Join(s.root, "victim")
			writeFile(t, victim, "precious\n")
			ev := h.ev
			if ev == "" {
				ev = "member-join"
			}
			// Registered beforehand: the leaves' targets and the victims
			// a wildcard would hit.
			s.mustRun(0, "member-join", joinLines("keep1", "keep2", "gone"))
			before := snapshot(t, filepath.Dir(s.root))

			var in bytes.Buffer
			in.WriteString(memberLine("good1", 3000))
			in.WriteString(h.line + "\n")
			if ev == "member-join" {
				in.WriteString(memberLine("good2", 3000))
			} else {
				in.WriteString(memberLine("gone", 3000)) // a valid leave
			}
			r := s.run(ev, in.Bytes())
			after := snapshot(t, filepath.Dir(s.root))
			checkConfined(t, s, before, after)
			if _, err := os.Stat("/tmp/serf-hb-pwned"); err == nil {
				t.Errorf("/tmp/serf-hb-pwned exists")
			}
			names := checkRendered(t, s)
			want := []string{"keep1", "keep2", "gone", "good1", "good2"}
			if ev != "member-join" {
				want = []string{"keep1", "keep2"}
			}
			switch h.want {
			case accepted:
				acc++
				if r.code != 0 {
					t.Fatalf("exit %d, want 0: %s", r.code, r.stderr)
				}
				want = append(want, h.why)
			case ignored:
				ign++
				if r.code != 0 || !strings.Contains(r.stderr, "ignored=1") {
					t.Fatalf("exit %d, want 0 and ignored=1: %s", r.code, r.stderr)
				}
			case rejected:
				rej++
				if r.code != 3 {
					t.Fatalf("exit %d, want 3: %s", r.code, r.stderr)
				}
				m := warnLine.FindStringSubmatch(r.stderr)
				if m != nil {
					if u, err := strconv.Unquote(m[2]); err == nil {
						m[2] = u // slog quotes values that need it
					}
				}
				if m == nil || m[1] != "2" || !strings.Contains(m[2], h.why) {
					t.Fatalf("stderr does not say that line 2 was rejected because %q:\n%s", h.why, r.stderr)
				}
				if n := len(warnLine.FindAllString(r.stderr, -1)); n != 1 {
					t.Fatalf("%d WARN lines, want 1", n)
				}
			}
			if !sameSet(names, want) {
				t.Fatalf("output lists %s", diffSets(names, want))
			}
			if len(r.stderr) > 16<<10 {
				t.Errorf("stderr is %d bytes: Serf keeps only the last 8 KiB", len(r.stderr))
			}
		})
	}
	report(t, fmt.Sprintf("%d hostile lines, one run each, between 2 valid lines", len(hostileCorpus())),
		"nothing created/changed/removed outside the registry, output and fake records (sha256 of the whole test tree before/after); output = header + well-formed server lines for exactly the registry, haproxy -c valid, no {{ {% or injected directive; valid lines applied; rejected: exit 3 and one WARN naming line 2 and the reason",
		fmt.Sprintf("pass; %d rejected, %d accepted (boundary cases and tag data), %d ignored (other role); %v in all", rej, acc, ign, time.Since(start).Round(time.Millisecond)))
}

// TestHostileTagsTemplate renders tag values through a template that puts
// them in the config, as words and in comments: HAProxy word quoting keeps
// each one data.
func TestHostileTagsTemplate(t *testing.T) {
	s := newSandbox(t)
	tmpl := strings.Replace(string(trailerTmpl),
		`    server {{ node.name }} {{ node.addr }}:{{ node.port|default:"3000" }} check`,
		"    # note of {{ node.name }}: {{ node.tags.note }}\n"+
			`    server {{ node.name }} {{ node.addr }}:{{ node.port|default:"3000" }} check cookie {{ node.tags.cookie|default:node.name }}`, 1)
	writeFile(t, s.tmpl, tmpl)
	s.env = append(s.env, "SERF_SELF_NAME=SELFMARK")
	values := []string{
		`{{ self.name }}`, `{% for n in nodes %}INJ{% endfor %}`, `a,b=c`,
		`x\n    bind *:81`, `x\tlisten x`, `"quoted" 'single' \back`, `${HOME} $(id)`,
		"# not a comment", `{% include "/etc/passwd" %}`, "é", "\x7f",
	}
	var in bytes.Buffer
	for i, v := range values {
		fmt.Fprintf(&in, "tag%02d\t127.0.3.%d\tbackend\tnote=%s,cookie=%s\n", i, 70+i, v, v)
	}
	s.mustRun(0, "member-join", in.Bytes())
	b, err := os.ReadFile(s.out)
	if err != nil {
		t.Fatal(err)
	}
	if err := haproxyCheck(s.out); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	for _, bad := range []string{"SELFMARK", "root:", "\n    bind *:81", "\n    listen"} {
		if bytes.Contains(b, []byte(bad)) {
			t.Errorf("output contains %q: template code or a directive from tag data", bad)
		}
	}
	// Exactly two lines per node, each value one quoted HAProxy word: no
	// value broke out of its line or was evaluated.
	var want strings.Builder
	want.WriteString(header)
	for _, l := range strings.SplitAfter(strings.TrimSuffix(in.String(), "\n"), "\n") {
		m, err := serfevent.ParseLine(strings.TrimSuffix(l, "\n"))
		if err != nil {
			t.Fatal(err)
		}
		cookie := m.Tags["cookie"]
		if cookie == "" {
			cookie = m.Name
		}
		fmt.Fprintf(&want, "    # note of %s: %s\n    server %s %s:3000 check cookie %s\n", m.Name, render.Word(m.Tags["note"]), m.Name, m.Addr, render.Word(cookie))
	}
	fmt.Fprintf(&want, "# end: %d servers\n", len(values))
	if string(b) != want.String() {
		t.Errorf("output:\n%s\nwant:\n%s", b, want.String())
	}
	report(t, fmt.Sprintf("%d hostile tag values through a template that writes tags into the config", len(values)),
		"output byte-identical to header + 2 lines per node with each value as one quoted HAProxy word (render.Word of the parsed tag); no template code evaluated (SELFMARK, /etc/passwd absent); haproxy -c valid",
		"pass")
}

// TestHostileBulk: the large and garbled inputs.
func TestHostileBulk(t *testing.T) {
	t.Run("100000_lines", func(t *testing.T) {
		s := newSandbox(t)
		var in bytes.Buffer
		rng := rand.New(rand.NewPCG(1, 2))
		bad := 0
		for i := range 100000 {
			switch {
			case i%10000 == 0:
				in.WriteString(memberLine(fmt.Sprintf("bulk%d", i/10000), 3000))
			case i%1000 == 1:
				fmt.Fprintf(&in, "bad%d\tnot-an-ip\tbackend\t\n", i)
				bad++
			default:
				fmt.Fprintf(&in, "other%d\t127.0.3.%d\tfrontend\trole=frontend\n", i, 1+rng.IntN(250))
			}
		}
		start := time.Now()
		r := s.run("member-join", in.Bytes())
		took := time.Since(start)
		if r.code != 3 {
			t.Fatalf("exit %d, want 3: %.2000s", r.code, r.stderr)
		}
		if n := len(warnLine.FindAllString(r.stderr, -1)); n != bad {
			t.Fatalf("%d WARN lines, want %d", n, bad)
		}
		if !strings.Contains(r.stderr, "lines=100000") {
			t.Errorf("summary does not count 100000 lines")
		}
		names := checkRendered(t, s)
		if len(names) != 10 {
			t.Fatalf("output lists %d nodes, want the 10 valid ones", len(names))
		}
		report(t, "1 run of 100,000 lines (10 valid joins, 100 bad addresses, the rest another role)",
			"exit 3; one WARN per bad line; the 10 valid nodes registered and rendered; haproxy -c valid",
			fmt.Sprintf("pass in %v; peak RSS %d MiB; stderr %d KiB", took.Round(time.Millisecond), r.peakRSS>>20, len(r.stderr)>>10))
	})
	t.Run("binary_garbage", func(t *testing.T) {
		s := newSandbox(t)
		rng := rand.New(rand.NewPCG(3, 4))
		before := snapshot(t, filepath.Dir(s.root))
		for trial := range 20 {
			garbage := make([]byte, 4096)
			for i := range garbage {
				garbage[i] = byte(rng.UintN(256))
			}
			in := append(append([]byte(memberLine(fmt.Sprintf("g%02d", trial), 3000)), garbage...), '\n')
			in = append(in, memberLine(fmt.Sprintf("h%02d", trial), 3000)...)
			r := s.run("member-join", in)
			if r.code != 3 && r.code != 0 {
				t.Fatalf("trial %d: exit %d: %s", trial, r.code, r.stderr)
			}
		}
		checkConfined(t, s, before, snapshot(t, filepath.Dir(s.root)))
		names := checkRendered(t, s)
		for trial := range 20 {
			for _, p := range []string{"g", "h"} {
				if !sameSet(filterPrefix(names, fmt.Sprintf("%s%02d", p, trial)), []string{fmt.Sprintf("%s%02d", p, trial)}) {
					t.Fatalf("valid line %s%02d not applied", p, trial)
				}
			}
		}
		report(t, "20 runs of 4 KiB random bytes between 2 valid lines",
			"exit 0 or 3, never a crash; nothing outside the registry; valid lines applied; output well-formed and haproxy -c valid",
			fmt.Sprintf("pass; %d nodes registered (the 40 valid ones plus whatever garbage formed a valid line)", len(names)))
	})
	t.Run("no_final_newline", func(t *testing.T) {
		s := newSandbox(t)
		in := memberLine("first", 3000) + strings.TrimSuffix(memberLine("last", 3000), "\n")
		s.mustRun(0, "member-join", []byte(in))
		if names := checkRendered(t, s); !sameSet(names, []string{"first", "last"}) {
			t.Fatalf("output lists %v", names)
		}
	})
	t.Run("CRLF_everywhere", func(t *testing.T) {
		s := newSandbox(t)
		in := strings.ReplaceAll(string(joinLines("c1", "c2", "c3")), "\n", "\r\n")
		s.mustRun(0, "member-join", []byte(in))
		if names := checkRendered(t, s); !sameSet(names, []string{"c1", "c2", "c3"}) {
			t.Fatalf("output lists %v", names)
		}
		reg, err := readRegistry(s.nodes)
		if err != nil {
			t.Fatal(err)
		}
		for n, c := range reg.Nodes {
			if bytes.Contains(c.Data, []byte("\r")) {
				t.Errorf("node file %s holds a CR: %q", n, c.Data)
			}
		}
	})
}

func filterPrefix(list []string, p string) []string {
	var out []string
	for _, x := range list {
		if x == p {
			out = append(out, x)
		}
	}
	return out
}
