package render

import (
	"context"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("u", false, "rewrite the golden files under testdata/ (review the diff before committing)")

func sample() Data {
	return Data{
		Role: "backend",
		Self: Self{Name: "lb", Role: "balancer"},
		Nodes: []Node{
			{Name: "web2", Addr: "127.0.0.12", Role: "backend", Tags: map[string]string{"role": "backend"}},
			{Name: "web1", Addr: "127.0.0.11", Role: "backend", Tags: map[string]string{"role": "backend", "port": "8080"}},
			{Name: "v6", Addr: "::1", Role: "backend", Tags: map[string]string{"port": "99999"}},
		},
	}
}

// sampleRoles is a registry serving several roles: web first (it takes
// what no other role's path prefix matches), a selected role with no
// nodes, a role that is not selected, and a node from the lab's NAME ADDR
// files, which has none.
func sampleRoles() Data {
	return Data{
		Roles: []string{"web", "api", "db-ro"},
		Self:  Self{Name: "lb", Role: "balancer"},
		Nodes: []Node{
			{Name: "web2", Addr: "127.0.0.12", Role: "web", Tags: map[string]string{"role": "web"}},
			{Name: "web1", Addr: "127.0.0.11", Role: "web", Tags: map[string]string{"role": "web", "port": "8080"}},
			{Name: "api1", Addr: "::1", Role: "api", Tags: map[string]string{"role": "api", "port": "9000"}},
			{Name: "cache1", Addr: "127.0.0.21", Role: "cache"},
			{Name: "legacy", Addr: "127.0.0.31"},
		},
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test ./render -u to create it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("output differs from %s (go test ./render -u rewrites it):\n--- got\n%s\n--- want\n%s", p, got, want)
	}
}

func TestDefaultTemplate(t *testing.T) {
	tpl, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	out, err := tpl.Execute(sample())
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "default.golden", out)
	// Sorted by name, port tag used when valid, 3000 otherwise.
	want := "    server v6 ::1:3000 check\n    server web1 127.0.0.11:8080 check\n    server web2 127.0.0.12:3000 check\n"
	if !strings.Contains(string(out), want) {
		t.Errorf("server lines missing or out of order; want\n%s", want)
	}
}

func TestDefaultTemplateRoles(t *testing.T) {
	tpl, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	out, err := tpl.Execute(sampleRoles())
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "roles.golden", out)
	for _, want := range []string{
		"    use_backend api if { path /api } || { path_beg /api/ }\n    use_backend db-ro if { path /db-ro } || { path_beg /db-ro/ }\n    default_backend web\n",
		"backend api\n    balance roundrobin\n    option httpchk GET /\n    server api1 ::1:9000 check\n\nbackend db-ro\n",
		"backend web\n    balance roundrobin\n    option httpchk GET /\n    server web1 127.0.0.11:8080 check\n    server web2 127.0.0.12:3000 check\n",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks\n%s", want)
		}
	}
	for _, node := range []string{"cache1", "legacy"} {
		if strings.Contains(string(out), node) {
			t.Errorf("%s, of no selected role, is in the output", node)
		}
	}

	// One role given as Roles renders as it always has.
	d := sample()
	d.Role, d.Roles = "", []string{"backend"}
	one, err := tpl.Execute(d)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "default.golden", one)
}

// TestDefaultTemplateLive: with a runtime API socket, the embedded
// template declares it at level admin and keeps server states across a
// reload. n.weight is the weight tag only when it is a weight.
func TestDefaultTemplateLive(t *testing.T) {
	tpl, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	d := sample()
	d.HAProxy = HAProxy{Socket: "/run/haproxy/admin.sock", StateFile: "/usr/local/etc/haproxy/haproxy.cfg.state"}
	d.Nodes[1].Tags = map[string]string{"port": "8080", "weight": "50"} // web1
	d.Nodes[0].Tags = map[string]string{"weight": "heavy"}              // web2
	out, err := tpl.Execute(d)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "live.golden", out)
	for _, want := range []string{
		"    stats socket /run/haproxy/admin.sock mode 600 level admin\n    server-state-file /usr/local/etc/haproxy/haproxy.cfg.state\n",
		"    load-server-state-from-file global\n",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	weights, err := ParseBytes("w", []byte(`{% for n in nodes %}{{ n.name }}={{ n.weight }};{% endfor %}`))
	if err != nil {
		t.Fatal(err)
	}
	if out, err := weights.Execute(d); err != nil || string(out) != "v6=;web1=50;web2=;" {
		t.Errorf("weights = %q, %v; want v6=;web1=50;web2=; (\"heavy\" is no weight)", out, err)
	}
}

// TestRoleThatCannotNameABackend: role names come from Serf tags; one that
// HAProxy cannot take as a name fails the render, naming it.
func TestRoleThatCannotNameABackend(t *testing.T) {
	tpl, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	d := sampleRoles()
	d.Roles = []string{"web", "api }\n    server evil 127.0.0.66:80"}
	_, err = tpl.Execute(d)
	want := `near 'ident'] "api }\n    server evil 127.0.0.66:80" cannot be a HAProxy name: letters, digits, _ - . : only`
	if err == nil || !strings.HasPrefix(err.Error(), "execute template "+DefaultName+": ") || !strings.HasSuffix(err.Error(), want) {
		t.Fatalf("Execute = %v; want an error ending in %s", err, want)
	}
}

// TestGoldenFilesPassHAProxy: the golden renders are configurations the
// installed HAProxy accepts (all addresses are IPs: haproxy -c resolves
// names).
func TestGoldenFilesPassHAProxy(t *testing.T) {
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		t.Fatal("haproxy not found: apt-get install -y haproxy")
	}
	for _, name := range []string{"default.golden", "roles.golden", "live.golden"} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, bin, "-c", "-f", filepath.Join("testdata", name)).CombinedOutput()
			if err != nil {
				t.Fatalf("haproxy -c -f testdata/%s: %v\n%s", name, err, out)
			}
		})
	}
}

func TestSelectedRoles(t *testing.T) {
	for _, tc := range []struct {
		name       string
		role       string
		roles      []string
		wantRole   string
		wantSorted string
		err        string
	}{
		{"none", "", nil, "", "", ""},
		{"role only", "web", nil, "web", "web", ""},
		{"roles only", "", []string{"web", "api"}, "web", "api web", ""},
		{"both", "web", []string{"web", "api"}, "web", "api web", ""},
		{"repeated", "", []string{"web", "api", "web"}, "web", "api web", ""},
		{"disagree", "api", []string{"web", "api"}, "", "", `role "api" is not the first of roles ["web" "api"]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := Data{Role: tc.role, Roles: tc.roles}
			sorted, err := selectedRoles(&d)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("selectedRoles = %v; want %s", err, tc.err)
				}
				return
			}
			if err != nil || d.Role != tc.wantRole || strings.Join(sorted, " ") != tc.wantSorted {
				t.Fatalf("selectedRoles = %q, %v, role %q; want %q, role %q", sorted, err, d.Role, tc.wantSorted, tc.wantRole)
			}
		})
	}
}

func TestRolesInTheContext(t *testing.T) {
	for _, tc := range []struct{ name, src, want string }{
		{"roles sorted", `{{ role }}:{% for r in roles %}{{ r }},{% endfor %}`, "web:api,db-ro,web,"},
		{"by_role by name", `{% for n in by_role.web %}{{ n.name }},{% endfor %}`, "web1,web2,"},
		{"by_role subscript", `{% for r in roles %}{{ r }}={% for n in by_role[r] %}{{ n.name }}{% empty %}-{% endfor %};{% endfor %}`,
			"api=api1;db-ro=-;web=web1web2;"},
		{"by_role pairs", `{% for role, list in by_role sorted %}{{ role }}:{{ list|length }};{% endfor %}`,
			":1;api:1;cache:1;db-ro:0;web:2;"},
		{"group_by", `{% for g in nodes|group_by:"role" %}{{ g.key }}={% for n in g.nodes %}{{ n.name }},{% endfor %};{% endfor %}`,
			"=cache1,legacy,;api=api1,;web=web1,web2,;"},
		{"group_by of a role", `{% for g in by_role.web|group_by:"port" %}[{{ g.key }}]{{ g.nodes.0.name }}{% endfor %}`,
			"[]web2[8080]web1"},
		{"group_by of nothing", `{% for g in by_role.db|group_by:"port" %}x{% empty %}none{% endfor %}`, "none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tpl, err := ParseBytes("t", []byte(tc.src))
			if err != nil {
				t.Fatal(err)
			}
			out, err := tpl.Execute(sampleRoles())
			if err != nil || string(out) != tc.want {
				t.Fatalf("Execute = %q, %v; want %q", out, err, tc.want)
			}
		})
	}
}

// TestFilterErrorsAtRunTime: what the check cannot see (a value set in a
// branch has no known type) the filters still refuse, with a position.
func TestFilterErrorsAtRunTime(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{`{% if 1 %}{% set l = roles %}{% endif %}{% for g in l|group_by:"x" %}{% endfor %}`,
			"execute template t: [Error (where: filter:group_by) | Line 1 Col 55 near 'group_by'] group_by groups a list of nodes, not []string"},
		{`{% if 1 %}{% set t = "" %}{% endif %}{{ nodes|group_by:t }}`,
			`execute template t: [Error (where: filter:group_by) | Line 1 Col 47 near 'group_by'] group_by needs a tag name: nodes|group_by:"zone"`},
		{"x\n{{ self.name|ident }}", `execute template t: [Error (where: filter:ident) | Line 2 Col 14 near 'ident'] "" cannot be a HAProxy name: letters, digits, _ - . : only`},
	} {
		tpl, err := ParseBytes("t", []byte(tc.src))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tpl.Execute(Data{}); err == nil || err.Error() != tc.want {
			t.Errorf("Execute(%q) = %v\nwant %s", tc.src, err, tc.want)
		}
	}
}

// TestExecuteTwice: pongo2 trims block tags' newlines at the start of
// every run, in place; a second run must not trim again.
func TestExecuteTwice(t *testing.T) {
	tpl, err := ParseBytes("t", []byte("{% if 1 %}\nx\n{% endif %}\n\n\ny\n"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		out, err := tpl.Execute(sample())
		if err != nil || string(out) != "x\n\n\ny\n" {
			t.Fatalf("run %d = %q, %v; want %q", i+1, out, err, "x\n\n\ny\n")
		}
	}
}

func TestLabTemplatePortsLineForLine(t *testing.T) {
	// The lab's handlebars loop, {{#each addresses}} server {{ host }} {{ ip }}:3000 check {{/each}},
	// in pongo2.
	src := "backend nodes\n{% for a in addresses %}\n    server {{ a.host }} {{ a.ip }}:3000 check\n{% endfor %}\n"
	tpl, err := ParseBytes("lab", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	out, err := tpl.Execute(sample())
	if err != nil {
		t.Fatal(err)
	}
	want := "backend nodes\n    server v6 ::1:3000 check\n    server web1 127.0.0.11:3000 check\n    server web2 127.0.0.12:3000 check\n"
	if string(out) != want {
		t.Fatalf("got\n%s\nwant\n%s", out, want)
	}
}

// TestAddressesThroughInclude: addresses is built only for templates that
// may use it, and a template that includes another may, whatever the
// included file's name.
func TestAddressesThroughInclude(t *testing.T) {
	dir := t.TempDir()
	part := "{% for a in addresses %}server {{ a.host }} {{ a.ip }}\n{% endfor %}"
	if err := os.WriteFile(filepath.Join(dir, "servers.part"), []byte(part), 0o644); err != nil {
		t.Fatal(err)
	}
	main := filepath.Join(dir, "haproxy.cfg.tmpl")
	if err := os.WriteFile(main, []byte("backend nodes\n{% include \"servers.part\" %}"), 0o644); err != nil {
		t.Fatal(err)
	}
	tpl, err := ParseFile(main)
	if err != nil {
		t.Fatal(err)
	}
	out, err := tpl.Execute(sample())
	if err != nil {
		t.Fatal(err)
	}
	want := "backend nodes\nserver v6 ::1\nserver web1 127.0.0.11\nserver web2 127.0.0.12\n"
	if string(out) != want {
		t.Fatalf("got\n%s\nwant\n%s", out, want)
	}

	// A template that never names it renders the same without it.
	plain, err := ParseBytes("plain", []byte("{% for n in nodes %}{{ n.name }},{% endfor %}"))
	if err != nil {
		t.Fatal(err)
	}
	if plain.mayUse("addresses") {
		t.Error("addresses built for a template that cannot use it")
	}
	if out, err := plain.Execute(sample()); err != nil || string(out) != "v6,web1,web2," {
		t.Fatalf("got %q, %v", out, err)
	}
}

func TestNodeDataStaysData(t *testing.T) {
	d := Data{Nodes: []Node{{Name: "web1", Addr: "10.0.0.1", Tags: map[string]string{
		"weight": "10\n    server evil 6.6.6.6:80",
		"note":   "{{ self.name }} {% if 1 %}x{% endif %} & <b>",
		"dollar": "${HOME}",
	}}}}
	src := "{% for n in nodes %}server {{ n.name }} {{ n.addr }} weight {{ n.tags.weight }} # {{ n.tags.note }} {{ n.tags.dollar }}\n{% endfor %}"
	tpl, err := ParseBytes("t", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	out, err := tpl.Execute(d)
	if err != nil {
		t.Fatal(err)
	}
	got := string(out)
	if strings.Count(got, "\n") != 1 {
		t.Fatalf("a tag value added lines to the output:\n%s", got)
	}
	for _, want := range []string{`"10\x0a    server evil 6.6.6.6:80"`, `"{{ self.name }} {% if 1 %}x{% endif %} & <b>"`, `"\${HOME}"`} {
		if !strings.Contains(got, want) {
			t.Errorf("output %q lacks the quoted value %s", got, want)
		}
	}
	if strings.Contains(got, "&amp;") {
		t.Error("output is HTML-escaped")
	}
}

func TestWord(t *testing.T) {
	for in, want := range map[string]string{
		"web1": "web1", "10.0.0.1": "10.0.0.1", "::1": "::1", "": "",
		"a b": `"a b"`, `a"b`: `"a\"b"`, `a\b`: `"a\\b"`, "a#b": `"a#b"`, "x\ny": `"x\x0ay"`, "$X": `"\$X"`,
	} {
		if got := Word(in); got != want {
			t.Errorf("Word(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestSyntaxErrorNamesTheLine(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bad.tmpl")
	if err := os.WriteFile(p, []byte("global\n\n{% for n in nodes %}\nserver {{ n.name }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := ParseFile(p)
	if err == nil {
		t.Fatal("ParseFile of a broken template succeeded")
	}
	if !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "Line 4") {
		t.Fatalf("error %q should name the file and line 4", err)
	}
}

func TestRuntimeError(t *testing.T) {
	tpl, err := ParseBytes("t", []byte("ok\n{{ role|date:\"2006\" }}"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = tpl.Execute(sample())
	if err == nil || !strings.Contains(err.Error(), "Line 2") {
		t.Fatalf("Execute = %v; want the filter's runtime error naming line 2", err)
	}
}

// install stages content for out, runs check on the staged file, and
// commits it when check passes, as the handler's transaction does.
func install(t *testing.T, out string, content []byte, check func(string) error) (Result, error) {
	t.Helper()
	p, err := Stage(out, content)
	if err != nil {
		return 0, err
	}
	defer p.Cleanup()
	if p.Changed() && check != nil {
		if err := check(p.Name()); err != nil {
			return 0, err
		}
	}
	return p.Commit()
}

func TestStageCommit(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(out, []byte("old\n"), 0o640); err != nil {
		t.Fatal(err)
	}

	var staged string
	res, err := install(t, out, []byte("new\n"), func(p string) error {
		staged = p
		b, err := os.ReadFile(p)
		if err != nil || string(b) != "new\n" {
			t.Errorf("check saw %q, %v; want the complete new file", b, err)
		}
		if filepath.Dir(p) != dir {
			t.Errorf("staged in %s, want next to the output in %s", filepath.Dir(p), dir)
		}
		if cur, _ := os.ReadFile(out); string(cur) != "old\n" {
			t.Errorf("output changed to %q before the commit", cur)
		}
		return nil
	})
	if err != nil || res != Installed {
		t.Fatalf("Stage+Commit = %v, %v", res, err)
	}
	if b, _ := os.ReadFile(out); string(b) != "new\n" {
		t.Fatalf("output = %q", b)
	}
	if fi, _ := os.Stat(out); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode = %v, want the old file's 0640", fi.Mode().Perm())
	}
	if _, err := os.Stat(staged); !os.IsNotExist(err) {
		t.Errorf("staged file %s still exists", staged)
	}

	p, err := Stage(out, []byte("new\n"))
	if err != nil || p.Changed() || p.Name() != "" {
		t.Fatalf("Stage of identical bytes = changed %v, name %q, %v; want unchanged, nothing staged", p.Changed(), p.Name(), err)
	}
	if res, err := p.Commit(); res != Unchanged || err != nil {
		t.Fatalf("Commit of unchanged = %v, %v", res, err)
	}

	// Refused: the caller cleans up, the output stays; or keeps the refused
	// file for the operator.
	_, err = install(t, out, []byte("broken\n"), func(string) error { return errors.New("haproxy -c exited 1") })
	if err == nil {
		t.Fatal("a failing check committed")
	}
	if b, _ := os.ReadFile(out); string(b) != "new\n" {
		t.Fatalf("a failed check changed the output to %q", b)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("left behind: %v", entries)
	}
	p, err = Stage(out, []byte("refused\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Keep(out + ".rejected"); err != nil {
		t.Fatal(err)
	}
	p.Cleanup()
	if b, _ := os.ReadFile(out + ".rejected"); string(b) != "refused\n" {
		t.Fatalf("kept file = %q", b)
	}
	if b, _ := os.ReadFile(out); string(b) != "new\n" {
		t.Fatalf("Keep changed the output to %q", b)
	}
}

// TestSyncAhead: a staged file flushed ahead commits, is kept or is
// cleaned up as one that was not; and a failed flush fails the Commit and
// the Keep that follow it, with its error, leaving the output as it was.
func TestSyncAhead(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(out, []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	stage := func(content string) *Pending {
		t.Helper()
		p, err := Stage(out, []byte(content))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Cleanup)
		return p
	}
	p := stage("new\n")
	p.SyncAhead()
	p.SyncAhead() // a second call starts nothing more
	if res, err := p.Commit(); res != Installed || err != nil {
		t.Fatalf("Commit after SyncAhead = %v, %v; want installed", res, err)
	}
	if b, _ := os.ReadFile(out); string(b) != "new\n" {
		t.Fatalf("output = %q, want the flushed content", b)
	}

	p = stage("kept\n")
	p.SyncAhead()
	if err := p.Keep(out + ".rejected"); err != nil {
		t.Fatalf("Keep after SyncAhead: %v", err)
	}
	if b, _ := os.ReadFile(out + ".rejected"); string(b) != "kept\n" {
		t.Fatalf("kept file = %q", b)
	}

	p = stage("dropped\n")
	p.SyncAhead()
	p.Cleanup()
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Fatalf("after Cleanup the directory holds %v, want the output and the kept file", entries)
	}

	unchanged := stage("new\n")
	unchanged.SyncAhead()
	if res, err := unchanged.Commit(); res != Unchanged || err != nil {
		t.Fatalf("Commit of an unchanged Pending after SyncAhead = %v, %v", res, err)
	}

	// A flush that fails (here: its file closed under it) fails the
	// commit and the keep with its error.
	for _, finish := range []func(*Pending) error{
		func(p *Pending) error { _, err := p.Commit(); return err },
		func(p *Pending) error { return p.Keep(out + ".rejected2") },
	} {
		p = stage("unflushed\n")
		p.f.File.Close()
		p.SyncAhead()
		err := finish(p)
		if err == nil || !strings.Contains(err.Error(), "closed") {
			t.Errorf("after a failed flush: %v; want the flush's error", err)
		}
		if b, _ := os.ReadFile(out); string(b) != "new\n" {
			t.Fatalf("a failed flush changed the output to %q", b)
		}
	}
}

// TestStageSymlink: a symlinked output keeps its link; the target is what
// is replaced, atomically, in the target's directory.
func TestStageSymlink(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real")
	out := filepath.Join(dir, "out")
	for _, d := range []string{real, out} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(real, "haproxy.cfg"), []byte("old\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(out, "haproxy.cfg")
	if err := os.Symlink("../real/haproxy.cfg", link); err != nil {
		t.Fatal(err)
	}
	var staged string
	res, err := install(t, link, []byte("new\n"), func(p string) error { staged = p; return nil })
	if err != nil || res != Installed {
		t.Fatalf("install through a symlink = %v, %v", res, err)
	}
	if filepath.Dir(staged) != real {
		t.Errorf("staged in %s, want the target's directory %s", filepath.Dir(staged), real)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the link was replaced: %v, %v", fi.Mode(), err)
	}
	if b, _ := os.ReadFile(filepath.Join(real, "haproxy.cfg")); string(b) != "new\n" {
		t.Fatalf("target = %q", b)
	}
	if fi, _ := os.Stat(link); fi.Mode().Perm() != 0o600 {
		t.Errorf("target mode = %v, want 0600 kept", fi.Mode().Perm())
	}
	// A dangling link: its target is created.
	os.Remove(filepath.Join(real, "haproxy.cfg"))
	if _, err := install(t, link, []byte("x\n"), nil); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(real, "haproxy.cfg")); string(b) != "x\n" {
		t.Fatalf("dangling link target = %q", b)
	}
}

func TestStageNewFileAndMissingDir(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "new.cfg")
	if res, err := install(t, out, []byte("x\n"), nil); err != nil || res != Installed {
		t.Fatalf("install of a new file = %v, %v", res, err)
	}
	if fi, _ := os.Stat(out); fi.Mode().Perm() != 0o644 {
		t.Errorf("new file mode = %v, want 0644", fi.Mode().Perm())
	}
	_, err := install(t, filepath.Join(dir, "missing", "x.cfg"), []byte("x\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("install into a missing directory = %v; want an error naming it", err)
	}
	if strings.Contains(err.Error(), ".x.cfg") {
		t.Errorf("error %q names the temp file", err)
	}
}

func TestRemoveStaleTemps(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{".haproxy.cfg123", ".haproxy.cfg", ".haproxy.cfgx1", "other"} {
		os.WriteFile(filepath.Join(dir, f), nil, 0o644)
	}
	removeStaleTemps(dir, "haproxy.cfg")
	var left []string
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		left = append(left, e.Name())
	}
	if strings.Join(left, " ") != ".haproxy.cfg .haproxy.cfgx1 other" {
		t.Fatalf("left %v; want only the renameio temp removed", left)
	}
}
