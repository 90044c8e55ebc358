package haproxy

// Live changes against a real HAProxy 2.6 and real HTTP backends.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptrace"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/serf-hb/serf-hb/internal/haproxytest"
)

// srvLine is a server line of backend b.
func srvLine(name string, be *backend, kw string) string {
	return strings.TrimRight(fmt.Sprintf("    server %s %s %s", name, be.addr, kw), " ") + "\n"
}

const rr = "backend b\n    balance roundrobin\n"

// plan diffs the lab's file for body old against the one for body new.
func (l *lab) plan(t *testing.T, old, new string) Plan {
	t.Helper()
	p, err := Diff([]byte(l.config(old)), []byte(l.config(new)))
	if err != nil {
		t.Fatalf("Diff: %v", err)
	}
	return p
}

// state returns backend's live servers by name.
func (l *lab) state(t *testing.T, backend string) map[string]liveServer {
	t.Helper()
	live, err := l.client.serversState(context.Background(), backend)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]liveServer{}
	for _, s := range live {
		m[s.Name] = s
	}
	return m
}

// verify runs Verify for body's backend b and returns the pending servers.
func (l *lab) verify(t *testing.T, body string) []string {
	t.Helper()
	pending, err := l.client.Verify(context.Background(), []byte(l.config(body)), []string{"b"})
	if err != nil {
		t.Fatal(err)
	}
	return pending
}

// spread sends n requests on c and counts the answering backends.
func (l *lab) spread(t *testing.T, c *http.Client, n int) map[string]int {
	t.Helper()
	seen := map[string]int{}
	for range n {
		name, err := l.get(c, "/")
		if err != nil {
			t.Fatal(err)
		}
		seen[name]++
	}
	return seen
}

// waitFor polls cond every 10 ms for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting after 5s for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// holdOn starts /slow requests until one is held open by server n; the
// other backends answer /slow at once (their release is closed).
func (l *lab) holdOn(t *testing.T, c *http.Client, n *backend, others ...*backend) *slow {
	t.Helper()
	for _, o := range others {
		o.finish()
	}
	for range 4 {
		s := l.startSlow(t, c)
		if s.server == n.name {
			return s
		}
		s.wait(t)
	}
	t.Fatalf("no /slow request reached %s in 4 tries", n.name)
	return nil
}

func TestApplyJoin(t *testing.T) {
	t.Parallel()
	a, n := startBackend(t, "a"), startBackend(t, "n")
	old := rr + srvLine("a", a, "check inter 300ms")
	// `enabled` in the file must not reach `add server` (haproxy#2497:
	// sent, the server shows UP and takes no request; the backend may
	// answer 503).
	new := old + srvLine("n", n, "check inter 300ms enabled weight 2")
	l := startHAProxy(t, old)
	p := l.plan(t, old, new)
	if len(p) != 1 || len(p[0].Add) != 1 || p[0].Add[0].Name != "n" {
		t.Fatalf("plan = %+v, want one add of n", p)
	}
	applied, err := l.client.Apply(context.Background(), p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if want := (Applied{Added: []string{"b/n"}}); !reflect.DeepEqual(applied, want) {
		t.Errorf("Apply = %v, want %v", applied, want)
	}
	seen := l.spread(t, newHTTPClient(t), 9)
	if seen["a"] != 3 || seen["n"] != 6 {
		t.Errorf("9 requests went to %v, want a:3 n:6 (weight 2)", seen)
	}
	// Health checks run: CHK_ST_CONFIGURED|CHK_ST_ENABLED, not just
	// configured (what a server enabled before `enable health` has).
	if got := l.stateField(t, "b", "n", "srv_check_state"); got != "6" {
		t.Errorf("srv_check_state of b/n = %s, want 6 (checks enabled)", got)
	}
	if pending := l.verify(t, new); len(pending) != 0 {
		t.Errorf("Verify: pending %v, want none", pending)
	}
}

// stateField returns one column of `show servers state` for backend/name.
func (l *lab) stateField(t *testing.T, backend, name, column string) string {
	t.Helper()
	reply, err := l.client.Command(context.Background(), "show servers state "+backend)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(reply, "\n")
	cols := strings.Fields(strings.TrimPrefix(lines[1], "# "))
	i := slices.Index(cols, column)
	for _, line := range lines[2:] {
		if f := strings.Fields(line); len(f) > i && f[3] == name {
			return f[i]
		}
	}
	t.Fatalf("no server %s/%s in %q", backend, name, reply)
	return ""
}

// deletes reports whether the lab's HAProxy can delete a server safely
// (2.9+: `wait srv-removable`), as Apply finds out.
func (l *lab) deletes(t *testing.T) bool {
	t.Helper()
	_, err := l.client.Delete(context.Background(), []string{"b/absent"})
	if err != nil {
		t.Fatal(err)
	}
	reply, _ := l.client.Command(context.Background(), "wait 1 srv-removable b/absent")
	return !strings.HasPrefix(reply, replyUnknown)
}

// TestApplyRemoveRetires: a removal puts the server in maintenance and
// returns at once; the stream it carries finishes; it is deleted only
// where HAProxy says it is removable (3.0), never on 2.6 (haproxy#2298).
func TestApplyRemoveRetires(t *testing.T) {
	t.Parallel()
	a, n := startBackend(t, "a"), startBackend(t, "n")
	new := rr + srvLine("a", a, "check inter 300ms")
	old := new + srvLine("n", n, "check inter 300ms")
	l := startHAProxy(t, old)
	c := newHTTPClient(t)
	held := l.holdOn(t, c, n, a)
	ctx := context.Background()

	start := time.Now()
	applied, err := l.client.Apply(ctx, l.plan(t, old, new), Options{Delete: true})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("a removal took %v: it must not wait for the stream", d)
	}
	if want := (Applied{Retired: []string{"b/n"}}); !reflect.DeepEqual(applied, want) {
		t.Errorf("Apply with a stream on b/n = %v, want %v", applied, want)
	}
	if l.state(t, "b")["n"].Admin&adminForcedMaint == 0 {
		t.Error("b/n is not in maintenance after its removal")
	}
	if pending := l.verify(t, new); !slices.Equal(pending, []string{"b/n"}) {
		t.Errorf("Verify pending = %v, want [b/n]", pending)
	}
	if seen := l.spread(t, newHTTPClient(t), 4); seen["a"] != 4 {
		t.Errorf("new requests after the removal went to %v, want all to a", seen)
	}
	if got, err := l.client.Delete(ctx, []string{"b/n"}); err != nil || !reflect.DeepEqual(got, Applied{Retired: []string{"b/n"}}) {
		t.Errorf("Delete while b/n carries a stream = %v, %v; want it kept", got, err)
	}
	n.finish()
	if rest := held.wait(t); rest != "done\n" {
		t.Errorf("the stream held on b/n ended with %q, want it to finish (done)", rest)
	}
	// The client's keep-alive connection that carried the stream goes on.
	reused := false
	tctx := httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }})
	req, _ := http.NewRequestWithContext(tctx, "GET", "http://"+l.front+"/", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !reused || resp.StatusCode != 200 {
		t.Errorf("next request on the same client: status %d, connection reused %v; want 200 on the kept connection", resp.StatusCode, reused)
	}
	if !l.deletes(t) {
		if got, err := l.client.Delete(ctx, []string{"b/n"}); err != nil || !reflect.DeepEqual(got, Applied{Retired: []string{"b/n"}}) {
			t.Errorf("Delete on an HAProxy without wait srv-removable = %v, %v; want b/n kept retired", got, err)
		}
		return
	}
	var got Applied
	waitFor(t, "Delete to delete b/n", func() bool {
		got, err = l.client.Delete(ctx, []string{"b/n"})
		return err != nil || len(got.Retired) == 0
	})
	if err != nil || !reflect.DeepEqual(got, Applied{Removed: []string{"b/n"}}) {
		t.Errorf("Delete = %v, %v; want b/n removed", got, err)
	}
	if pending := l.verify(t, new); len(pending) != 0 {
		t.Errorf("Verify pending = %v after Delete, want none", pending)
	}
	// A server already gone counts as removed: Delete can be retried.
	if got, err := l.client.Delete(ctx, []string{"b/n"}); err != nil || !reflect.DeepEqual(got, Applied{Removed: []string{"b/n"}}) {
		t.Errorf("Delete again = %v, %v; want b/n removed", got, err)
	}
}

func TestApplyReaddressReweight(t *testing.T) {
	t.Parallel()
	a, n1, n2 := startBackend(t, "a"), startBackend(t, "n1"), startBackend(t, "n2")
	old := rr + srvLine("a", a, "") + srvLine("n", n1, "")
	new := rr + srvLine("a", a, "weight 3") + srvLine("n", n2, "")
	l := startHAProxy(t, old)
	p := l.plan(t, old, new)
	applied, err := l.client.Apply(context.Background(), p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if want := (Applied{Readdressed: []string{"b/n"}, Reweighted: []string{"b/a"}}); !reflect.DeepEqual(applied, want) {
		t.Errorf("Apply = %v, want %v", applied, want)
	}
	if seen := l.spread(t, newHTTPClient(t), 8); seen["a"] != 6 || seen["n2"] != 2 {
		t.Errorf("8 requests went to %v, want a:6 n2:2", seen)
	}
	l.verify(t, new)
}

// TestApplyRejoinRevives: a member that left comes back while its retired
// server still carries a stream; the server is put back in rotation in
// place, and the stream is not cut. Without Revive's consent (the server
// was defined otherwise), the add fails where HAProxy cannot delete the
// server safely, so that the caller reloads.
func TestApplyRejoinRevives(t *testing.T) {
	t.Parallel()
	a, n, n2 := startBackend(t, "a"), startBackend(t, "n"), startBackend(t, "n2")
	without := rr + srvLine("a", a, "check inter 300ms")
	with := without + srvLine("n", n, "check inter 300ms")
	l := startHAProxy(t, with)
	held := l.holdOn(t, newHTTPClient(t), n, a)
	ctx := context.Background()
	if got, err := l.client.Apply(ctx, l.plan(t, with, without), Options{}); err != nil || len(got.Retired) != 1 {
		t.Fatalf("Apply leave = %v, %v; want b/n retired", got, err)
	}
	if _, err := l.client.Apply(ctx, l.plan(t, without, with), Options{}); err == nil || !strings.Contains(err.Error(), "retired server") {
		t.Errorf("Apply rejoin without Revive while b/n is busy: %v; want the add refused, naming the retired server", err)
	}
	// Back at another address (its app moved), as the registry says.
	moved := without + srvLine("n", n2, "check inter 300ms")
	revive := Options{Revive: func(b string, s Server) bool { return b == "b" && s.Name == "n" }}
	got, err := l.client.Apply(ctx, l.plan(t, without, moved), revive)
	if err != nil || !reflect.DeepEqual(got, Applied{Revived: []string{"b/n"}}) {
		t.Fatalf("Apply rejoin = %v, %v; want b/n revived", got, err)
	}
	if seen := l.spread(t, newHTTPClient(t), 4); seen["n2"] != 2 {
		t.Errorf("requests went to %v, want b/n back in rotation at its new address", seen)
	}
	n.finish()
	if rest := held.wait(t); rest != "done\n" {
		t.Errorf("the revived server's stream ended with %q, want it to finish (done)", rest)
	}
	if pending := l.verify(t, moved); len(pending) != 0 {
		t.Errorf("Verify pending = %v, want none", pending)
	}
}

// TestDynamicAlgorithms checks which algorithms Diff lets through against
// what HAProxy 2.6 answers to `add server`.
func TestDynamicAlgorithms(t *testing.T) {
	t.Parallel()
	a := startBackend(t, "a")
	tests := []struct {
		name, lines string
		live        bool
		why         string
	}{
		{"rr", "balance roundrobin", true, ""},
		{"leastconn", "balance leastconn", true, ""},
		{"first", "balance first", true, ""},
		{"random", "balance random(2)", true, ""},
		{"consistent", "balance source\n    hash-type consistent", true, ""},
		{"uricons", "balance uri\n    hash-type consistent sdbm avalanche", true, ""},
		{"staticrr", "balance static-rr", false, "balance static-rr is static"},
		{"mapbased", "balance source", false, "balance source with hash-type map-based is static"},
		{"hdrmap", "balance hdr(host)\n    hash-type map-based", false, "balance hdr(host) with hash-type map-based is static"},
	}
	var body strings.Builder
	for _, tt := range tests {
		fmt.Fprintf(&body, "backend %s\n    %s\n%s", tt.name, tt.lines, srvLine("a", a, ""))
	}
	l := startHAProxy(t, rr+srvLine("a", a, "")+body.String())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := rr + srvLine("a", a, "") + body.String()
			new := strings.Replace(old, "backend "+tt.name+"\n    "+tt.lines+"\n"+srvLine("a", a, ""),
				"backend "+tt.name+"\n    "+tt.lines+"\n"+srvLine("a", a, "")+srvLine("n", a, "check"), 1)
			p, err := Diff([]byte(l.config(old)), []byte(l.config(new)))
			var nl *NotLiveError
			if tt.live != (err == nil) || (!tt.live && (!errors.As(err, &nl) || !strings.Contains(nl.Reason, tt.why))) {
				t.Fatalf("Diff = %v, %v; want live %v (%q)", p, err, tt.live, tt.why)
			}
			_, err = l.client.Command(context.Background(), fmt.Sprintf("add server %s/n %s", tt.name, a.addr))
			if tt.live != (err == nil) {
				t.Fatalf("add server %s/n: %v; HAProxy disagrees with Diff (live %v)", tt.name, err, tt.live)
			}
			if !tt.live && !strings.Contains(err.Error(), "Backend must use a dynamic load balancing to support dynamic servers.") {
				t.Errorf("add server error %q does not carry HAProxy's reply", err)
			}
		})
	}
}

// keywordsSince are the keywords whose answer to `add server` changed after
// 2.6, as measured on Debian 13's 3.0.11: from version since on, accepted
// says whether HAProxy takes it. Diff keeps to what every version takes:
// `enabled` is never sent (add drops it: 2.6 accepts it and breaks the
// backend, haproxy#2497; 3.0 refuses it), and `cookie` still reloads.
var keywordsSince = map[string]struct {
	since    haproxyVersion
	accepted bool
}{
	"enabled": {haproxyVersion{3, 0}, false},
	"cookie":  {haproxyVersion{3, 0}, true},
}

// sampleKeywords is one use of each keyword Diff classifies; CA and CRL
// files (CAFILE, CRLFILE) are filled in by the test.
var sampleKeywords = map[string]string{
	"addr": "addr 127.0.21.9", "agent-addr": "agent-addr 127.0.21.9", "agent-inter": "agent-inter 2s",
	"agent-port": "agent-port 9999", "agent-send": "agent-send x", "allow-0rtt": "allow-0rtt",
	"alpn": "alpn h2", "backup": "backup", "ca-file": "ca-file CAFILE", "check-alpn": "check-alpn h2",
	"check-proto": "check-proto h2", "check-send-proxy": "check-send-proxy", "check-sni": "check-sni x",
	"check-ssl": "check-ssl verify none", "ciphers": "ciphers ALL",
	"ciphersuites": "ciphersuites TLS_AES_128_GCM_SHA256", "cookie": "cookie c1", "crl-file": "crl-file CRLFILE",
	"crt": "crt /nonexistent", "disabled": "disabled", "downinter": "downinter 2s", "enabled": "enabled",
	"error-limit": "error-limit 10", "fall": "fall 3", "fastinter": "fastinter 2s",
	"force-sslv3": "force-sslv3", "force-tlsv10": "force-tlsv10", "force-tlsv11": "force-tlsv11",
	"force-tlsv12": "force-tlsv12", "force-tlsv13": "force-tlsv13", "id": "id 4242", "init-addr": "init-addr none",
	"inter": "inter 2s", "log-proto": "log-proto octet-count", "max-reuse": "max-reuse 10",
	"maxconn": "maxconn 10", "maxqueue": "maxqueue 10", "minconn": "minconn 2", "namespace": "namespace x",
	"no-agent-check": "no-agent-check", "no-backup": "no-backup", "no-check": "no-check",
	"no-check-ssl": "no-check-ssl", "no-send-proxy": "no-send-proxy", "no-send-proxy-v2": "no-send-proxy-v2",
	"no-send-proxy-v2-ssl": "no-send-proxy-v2-ssl", "no-send-proxy-v2-ssl-cn": "no-send-proxy-v2-ssl-cn",
	"no-ssl": "no-ssl", "no-ssl-reuse": "no-ssl-reuse", "no-sslv3": "no-sslv3", "no-tfo": "no-tfo",
	"no-tls-tickets": "no-tls-tickets", "no-tlsv10": "no-tlsv10", "no-tlsv11": "no-tlsv11",
	"no-tlsv12": "no-tlsv12", "no-tlsv13": "no-tlsv13", "non-stick": "non-stick", "npn": "npn h2",
	"observe": "observe layer4", "on-error": "on-error mark-down", "on-marked-down": "on-marked-down shutdown-sessions",
	"on-marked-up": "on-marked-up shutdown-backup-sessions", "pool-low-conn": "pool-low-conn 2",
	"pool-max-conn": "pool-max-conn 2", "pool-purge-delay": "pool-purge-delay 2s", "port": "port 9001",
	"proto": "proto h2", "proxy-v2-options": "proxy-v2-options ssl", "redir": "redir http://127.0.21.9",
	"resolve-net": "resolve-net 127.0.0.0/8", "resolve-opts": "resolve-opts allow-dup-ip",
	"resolve-prefer": "resolve-prefer ipv4", "resolvers": "resolvers r", "rise": "rise 2",
	"send-proxy": "send-proxy", "send-proxy-v2": "send-proxy-v2", "send-proxy-v2-ssl": "send-proxy-v2-ssl",
	"send-proxy-v2-ssl-cn": "send-proxy-v2-ssl-cn", "slowstart": "slowstart 10s", "sni": "sni str(x)",
	"socks4": "socks4 127.0.21.9:1080", "source": "source 127.0.21.1", "ssl": "ssl verify none",
	"ssl-max-ver": "ssl-max-ver TLSv1.3", "ssl-min-ver": "ssl-min-ver TLSv1.2", "ssl-reuse": "ssl-reuse",
	"stick": "stick", "tcp-ut": "tcp-ut 10s", "tfo": "tfo", "tls-tickets": "tls-tickets",
	"verify": "verify none", "verifyhost": "verifyhost x", "ws": "ws h1",
}

// TestKeywordsAsMeasured sends every keyword Diff classifies to a real
// HAProxy: those it lets through must be accepted by `add server`, those
// it calls refused must be refused with HAProxy's reason, as measured on
// 2.6, except where keywordsSince says the running version answers
// otherwise.
func TestKeywordsAsMeasured(t *testing.T) {
	t.Parallel()
	for kw := range liveKeywords {
		if refusedKeywords[kw] {
			t.Errorf("keyword %s is both live and refused", kw)
		}
	}
	for kw := range keywordArgs {
		if !liveKeywords[kw] && !refusedKeywords[kw] && unsafeKeywords[kw] == "" && kw != "weight" {
			t.Errorf("keyword %s has an arity but no classification", kw)
		}
	}
	ca, crl := writeCAAndCRL(t)
	a := startBackend(t, "a")
	// A dynamic server can only use CA and CRL files HAProxy loaded at
	// start: a server of the file uses them.
	l := startHAProxy(t, rr+srvLine("a", a, "")+"backend lc\n    balance leastconn\n"+
		srvLine("pre", a, "ssl verify required ca-file "+ca+" crl-file "+crl))
	version := l.version(t)
	i := 0
	for kw, use := range sampleKeywords {
		if !liveKeywords[kw] && !refusedKeywords[kw] {
			t.Errorf("sample keyword %s is unclassified", kw)
			continue
		}
		i++
		use = strings.NewReplacer("CAFILE", ca, "CRLFILE", crl).Replace(use)
		t.Run(kw, func(t *testing.T) {
			_, err := l.client.Command(context.Background(), fmt.Sprintf("add server lc/k%d %s %s", i, a.addr, use))
			accepted := liveKeywords[kw]
			if c, ok := keywordsSince[kw]; ok && !version.before(c.since) {
				accepted = c.accepted
			}
			if accepted && err != nil {
				t.Errorf("HAProxy %s refuses %q: %v", version, use, err)
			}
			if !accepted && (err == nil || !strings.Contains(err.Error(), "option is not accepted for dynamic server")) {
				t.Errorf("add server with %q: %v; want HAProxy %s's refusal", use, err, version)
			}
			if refusedKeywords[kw] {
				old := rr + srvLine("a", a, "")
				_, err := Diff([]byte(old), []byte(old+srvLine("n", a, use)))
				var nl *NotLiveError
				if !errors.As(err, &nl) || !strings.Contains(nl.Reason, "HAProxy 2.6 refuses keyword") {
					t.Errorf("Diff adding a server with %q: %v; want a NotLiveError", use, err)
				}
			}
		})
	}
	for kw := range liveKeywords {
		if sampleKeywords[kw] == "" {
			t.Errorf("live keyword %s has no sample: it was never sent to HAProxy", kw)
		}
	}
	for kw := range refusedKeywords {
		if sampleKeywords[kw] == "" {
			t.Errorf("refused keyword %s has no sample", kw)
		}
	}
}

// TestDefaultServerNotInherited shows why Diff refuses an add in a backend
// with default-server: the dynamic server misses its settings.
func TestDefaultServerNotInherited(t *testing.T) {
	t.Parallel()
	a, n := startBackend(t, "a"), startBackend(t, "n")
	old := rr + "    default-server weight 5\n" + srvLine("a", a, "") + srvLine("n", n, "")
	l := startHAProxy(t, old)
	if _, err := l.client.Command(context.Background(), "add server b/x "+n.addr); err != nil {
		t.Fatal(err)
	}
	st := l.state(t, "b")
	if st["a"].UWeight != 5 || st["x"].UWeight != 1 {
		t.Errorf("weights a:%d x:%d; want 5 from default-server, and 1 for the dynamic server", st["a"].UWeight, st["x"].UWeight)
	}
	_, err := Diff([]byte(old), []byte(old+srvLine("y", n, "")))
	var nl *NotLiveError
	if !errors.As(err, &nl) || !strings.Contains(nl.Reason, "would not inherit default-server (line 3)") {
		t.Errorf("Diff adding to a backend with default-server: %v; want a NotLiveError", err)
	}
	// A removal needs no defaults: it stays live.
	without := rr + "    default-server weight 5\n" + srvLine("a", a, "")
	p := l.plan(t, old, without)
	if _, err := l.client.Apply(context.Background(), p, Options{Delete: true}); err != nil {
		t.Fatal(err)
	}
	l.verify(t, without) // a's weight, 5, comes from default-server
}

func TestVerifyMismatch(t *testing.T) {
	t.Parallel()
	a, n := startBackend(t, "a"), startBackend(t, "n")
	body := rr + srvLine("a", a, "") + srvLine("n", n, "")
	l := startHAProxy(t, body)
	l.verify(t, body)
	ctx := context.Background()
	for _, cmd := range []string{
		"set weight b/a 7",
		"set server b/n addr 127.0.21.9 port 1",
		"add server b/rogue 127.0.21.9:1", "set server b/rogue state ready",
		"add server b/leftover 127.0.21.9:2", "set server b/leftover state drain",
	} {
		if _, err := l.client.Command(ctx, cmd); err != nil {
			t.Fatal(err)
		}
	}
	// HAProxy 3.0 applies the address a moment after it answers; the
	// other differences keep Verify from waiting for it.
	haproxytest.WaitFor(t, 2*time.Second, "b/n's new address to show", func() bool {
		reply, err := l.client.Command(ctx, "show servers state b")
		return err == nil && strings.Contains(reply, " n 127.0.21.9 ")
	})
	pending, err := l.client.Verify(ctx, []byte(l.config(body)), []string{"b"})
	if !slices.Equal(pending, []string{"b/leftover"}) {
		t.Errorf("pending = %v, want [b/leftover]", pending)
	}
	for _, want := range []string{
		"b/a: running with weight 7, the file (line 15) says 1",
		"b/n: running at 127.0.21.9 port 1, the file (line 16) says " + n.addr,
		"b/rogue: running in rotation, not in the file",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Verify error %v lacks %q", err, want)
		}
	}
	if _, err := l.client.Verify(ctx, []byte(l.config(body)), []string{"nob"}); err == nil || !strings.Contains(err.Error(), "backend nob: not in the file") {
		t.Errorf("Verify of a backend the file lacks: %v", err)
	}
}

// TestDumpStateAcrossRestart: a state dumped with DumpState is what a
// new HAProxy loads with load-server-state-from-file, for the servers that
// the next file defines as they run and the previous file had: a weight or
// an address set by hand, and a server an interrupted live add left in
// maintenance (the previous file lacks it), start as the next file says.
func TestDumpStateAcrossRestart(t *testing.T) {
	t.Parallel()
	a, n, w, x, y := startBackend(t, "a"), startBackend(t, "n"), startBackend(t, "w"), startBackend(t, "x"), startBackend(t, "y")
	path := t.TempDir() + "/state"
	prev := rr + "    load-server-state-from-file local\n    server-state-file-name " + path + "\n" +
		srvLine("a", a, "") + srvLine("n", n, "") + srvLine("w", w, "") + srvLine("x", x, "")
	next := prev + srvLine("y", y, "")
	l := startHAProxy(t, prev)
	ctx := context.Background()
	for _, cmd := range []string{"set server b/n state maint", "set weight b/w 7",
		"set server b/x addr 127.0.21.250 port 1", "add server b/y " + y.addr} {
		if _, err := l.client.Command(ctx, cmd); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.client.DumpState(ctx, path, []byte(l.config(next)), []byte(l.config(prev))); err != nil {
		t.Fatal(err)
	}
	l2 := startHAProxy(t, next)
	got := l2.state(t, "b")
	if got["n"].Admin&adminForcedMaint == 0 {
		t.Errorf("b/n admin state %d after a restart with the dumped state, want maintenance kept", got["n"].Admin)
	}
	if got["w"].UWeight != 1 {
		t.Errorf("b/w weight %d after the restart, want the file's 1 (7 was set by hand)", got["w"].UWeight)
	}
	if addr := fmt.Sprintf("%s:%d", got["x"].Addr, got["x"].Port); addr != x.addr {
		t.Errorf("b/x runs at %s after the restart, want the file's %s", addr, x.addr)
	}
	if got["y"].Admin != 0 {
		t.Errorf("b/y admin state %d after the restart, want in rotation as the file says", got["y"].Admin)
	}
	if err := (Client{Addr: l.client.Addr}).DumpState(ctx, t.TempDir()+"/no/such/dir/state", nil, nil); err == nil || !strings.Contains(err.Error(), "no/such/dir") {
		t.Errorf("DumpState to a missing directory: %v; want an error naming it", err)
	}
}

func TestCommandErrorsLive(t *testing.T) {
	t.Parallel()
	a := startBackend(t, "a")
	l := startHAProxy(t, rr+srvLine("a", a, ""))
	tests := []struct {
		name, cmd string
		client    Client
		want      []string
	}{
		{"not admin", "add server b/x 127.0.21.9:1", l.user, []string{"add server b/x 127.0.21.9:1: Permission denied", "hint: the socket's level is below admin"}},
		{"unknown command", "frob", l.client, []string{": frob: Unknown command", "hint: HAProxy older than 2.6"}},
		{"no such server", "set weight b/nope 2", l.client, []string{"set weight b/nope 2: No such server."}},
		{"no such backend", "show servers state nob", l.client, []string{"Can't find backend."}},
		{"bad address", "set server b/a addr nowhere.invalid port 1", l.client, []string{"Invalid addr 'nowhere.invalid'"}},
		{"del in rotation", "del server b/a", l.client, []string{"Only servers in maintenance mode can be deleted."}},
		{"exists", "add server b/a 127.0.21.9:1", l.client, []string{replyExists}},
		{"health without check", "enable health b/a", l.client, []string{"Health check was not configured on this server, cannot enable."}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.client.Command(context.Background(), tt.cmd)
			for _, w := range tt.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("Command(%q) = %v; want an error with %q", tt.cmd, err, w)
				}
			}
		})
	}
	// The same API over TCP.
	if _, err := (Client{Addr: l.tcp}).Command(context.Background(), "set weight b/a 1"); err != nil {
		t.Errorf("over TCP: %v", err)
	}
}

// TestCommandsLive: commands that reply nothing on success share one
// connection; HAProxy runs each whatever the one before replied, and a
// failure anywhere is an error quoting HAProxy's reply.
func TestCommandsLive(t *testing.T) {
	t.Parallel()
	a := startBackend(t, "a")
	l := startHAProxy(t, rr+srvLine("a", a, ""))
	ctx := context.Background()
	if err := l.client.Commands(ctx, "set weight b/a 3", "set weight b/a 4"); err != nil {
		t.Fatalf("two commands: %v", err)
	}
	if got := l.stateField(t, "b", "a", "srv_uweight"); got != "4" {
		t.Errorf("weight of b/a after 3 then 4: %s", got)
	}
	err := l.client.Commands(ctx, "set weight b/nope 2", "set weight b/a 5")
	if err == nil || !strings.Contains(err.Error(), "set weight b/nope 2; set weight b/a 5: No such server.") {
		t.Errorf("a failing first command: %v, want an error quoting both and HAProxy's reply", err)
	}
	if got := l.stateField(t, "b", "a", "srv_uweight"); got != "5" {
		t.Errorf("weight of b/a after a failed command then 5: %s; HAProxy runs the second anyway", got)
	}
	for _, bad := range [][]string{{"add server b/y 127.0.21.9:1"}, {"set weight b/a 1; set weight b/a 2"}, {"set weight b/a 1", ""}} {
		if err := l.client.Commands(ctx, bad...); err == nil {
			t.Errorf("Commands(%q) sent, want it refused", bad)
		}
	}
	if got := l.stateField(t, "b", "a", "srv_uweight"); got != "5" {
		t.Errorf("weight of b/a after refused commands: %s, want 5 untouched", got)
	}
}
