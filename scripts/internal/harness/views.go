package harness

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The views of a cluster that the suites compare: Serf's members, the
// registry, the rendered file's server lines and HAProxy's own servers,
// each read from its source's own format, never through serf-hb's
// packages (see docs/testing.md, "The oracle rule").

// Servers maps a server name to its address:port: one view of the
// backends.
type Servers map[string]string

// String lists the servers sorted by name, "{web1@10.0.0.1:80 ...}".
func (s Servers) String() string {
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

// Equal reports whether s and o hold the same servers at the same
// addresses.
func (s Servers) Equal(o Servers) bool { return len(s) == len(o) && s.SubsetOf(o) }

// SubsetOf reports whether every server of s is in o, with its address.
func (s Servers) SubsetOf(o Servers) bool {
	for k, v := range s {
		if got, ok := o[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// Diff says how s differs from want, "" when equal: "-name" missing,
// "+name" extra, "name@addr (want addr)" moved.
func (s Servers) Diff(want Servers) string {
	var d []string
	for k, v := range want {
		if got, ok := s[k]; !ok {
			d = append(d, "-"+k)
		} else if got != v {
			d = append(d, fmt.Sprintf("%s@%s (want %s)", k, got, v))
		}
	}
	for k := range s {
		if _, ok := want[k]; !ok {
			d = append(d, "+"+k)
		}
	}
	sort.Strings(d)
	return strings.Join(d, " ")
}

// Member is one member of `serf members -format json`.
type Member struct {
	Name   string            `json:"name"`
	Addr   string            `json:"addr"`
	Tags   map[string]string `json:"tags"`
	Status string            `json:"status"`
}

// Members runs argv, a `serf members -format json` command (with its
// -rpc-addr, or inside a namespace), and returns the members it lists.
func Members(argv ...string) ([]Member, error) {
	out, err := Run(5*time.Second, nil, argv...)
	if err != nil {
		return nil, err
	}
	var v struct{ Members []Member }
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		return nil, fmt.Errorf("serf members: %v", err)
	}
	return v.Members, nil
}

// AliveBackends is Serf's view: the alive members tagged role=backend, at
// their address and the port of their port tag (serf-hb's default, 3000,
// without one).
func AliveBackends(ms []Member) (Servers, error) {
	s := Servers{}
	for _, m := range ms {
		if m.Status != "alive" || m.Tags["role"] != "backend" {
			continue
		}
		host, _, err := net.SplitHostPort(m.Addr)
		if err != nil {
			return nil, fmt.Errorf("member %s: %v", m.Name, err)
		}
		s[m.Name] = net.JoinHostPort(host, portOr3000(m.Tags["port"]))
	}
	return s, nil
}

func portOr3000(port string) string {
	if port == "" {
		return "3000"
	}
	return port
}

// RegistryServers is the registry's view (ReadRegistry): every node at its
// address and the port of its port tag (3000 without one).
func RegistryServers(dir string) (Servers, error) {
	r, err := ReadRegistry(dir)
	if err != nil {
		return nil, err
	}
	s := Servers{}
	for name, n := range r.Nodes {
		s[name] = net.JoinHostPort(n.Addr.String(), portOr3000(n.Tags["port"]))
	}
	return s, nil
}

// ConfigServers is the rendered file's view: its "server NAME ADDR" lines.
func ConfigServers(path string) (Servers, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ServerLines(b), nil
}

// ServerLines reads the "server NAME ADDR ..." lines of a configuration.
func ServerLines(b []byte) Servers {
	s := Servers{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 3 && f[0] == "server" {
			s[f[1]] = f[2]
		}
	}
	return s
}

// ServerState is one server of HAProxy's `show servers state`.
type ServerState struct {
	Addr            string // srv_addr:srv_port
	IP              string // srv_addr
	Port            int    // srv_port
	Weight, IWeight int    // srv_uweight, srv_iweight
	Op, Admin       int    // srv_op_state, srv_admin_state
}

// Routed reports whether HAProxy sends requests to the server: UP and in
// no maintenance or drain.
func (s ServerState) Routed() bool { return s.Op == 2 && s.Admin == 0 }

// Maint reports whether the server is in maintenance (by the runtime API,
// before its deletion).
func (s ServerState) Maint() bool { return s.Admin&0x01 != 0 }

// ServersState asks HAProxy's runtime API (sock, level admin) for the
// servers of backend, by name.
func ServersState(sock, backend string) (map[string]ServerState, error) {
	out, err := HAProxyCommand(sock, "show servers state "+backend)
	if err != nil {
		return nil, err
	}
	return parseServersState(out)
}

// parseServersState reads the answer by its header's column names: "1",
// then "# be_id be_name srv_id srv_name srv_addr ...", then a line a
// server.
func parseServersState(out string) (map[string]ServerState, error) {
	lines := strings.Split(out, "\n")
	if len(lines) < 2 || !strings.HasPrefix(lines[1], "# ") {
		return nil, fmt.Errorf("show servers state: %q", out)
	}
	col := map[string]int{}
	for i, name := range strings.Fields(strings.TrimPrefix(lines[1], "# ")) {
		col[name] = i
	}
	for _, name := range []string{"srv_name", "srv_addr", "srv_port", "srv_op_state", "srv_admin_state", "srv_uweight", "srv_iweight"} {
		if _, ok := col[name]; !ok {
			return nil, fmt.Errorf("show servers state: no column %s in %q", name, lines[1])
		}
	}
	m := map[string]ServerState{}
	for _, line := range lines[2:] {
		f := strings.Fields(line)
		if len(f) < len(col) {
			continue
		}
		num := func(name string) int {
			n, _ := strconv.Atoi(f[col[name]])
			return n
		}
		ip, port := f[col["srv_addr"]], f[col["srv_port"]]
		m[f[col["srv_name"]]] = ServerState{Addr: net.JoinHostPort(ip, port), IP: ip, Port: num("srv_port"),
			Weight: num("srv_uweight"), IWeight: num("srv_iweight"), Op: num("srv_op_state"), Admin: num("srv_admin_state")}
	}
	return m, nil
}

// ConfigServer is one server line of a backend section.
type ConfigServer struct {
	Name, Address string // Address as written: IP:PORT
	Weight        int    // from `weight N` on the line, else the section's default-server, else 1
}

// BackendServers reads the server lines of section `backend NAME` of a
// configuration, or reports that it has none.
func BackendServers(cfg []byte, backend string) ([]ConfigServer, error) {
	var list []ConfigServer
	in, found, defWeight := false, false, 1
	for _, line := range strings.Split(string(cfg), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if line[0] != ' ' && line[0] != '\t' { // a section header
			in = len(f) == 2 && (f[0] == "backend" || f[0] == "listen") && f[1] == backend
			found = found || in
			defWeight = 1
			continue
		}
		switch {
		case !in:
		case f[0] == "default-server":
			if w, ok := weightOf(f[1:]); ok {
				defWeight = w
			}
		case f[0] == "server" && len(f) >= 3:
			w, ok := weightOf(f[3:])
			if !ok {
				w = defWeight
			}
			list = append(list, ConfigServer{Name: f[1], Address: f[2], Weight: w})
		}
	}
	if !found {
		return nil, fmt.Errorf("no backend %s", backend)
	}
	return list, nil
}

func weightOf(words []string) (int, bool) {
	for i := 0; i+1 < len(words); i++ {
		if words[i] == "weight" {
			w, err := strconv.Atoi(words[i+1])
			return w, err == nil
		}
	}
	return 0, false
}

// Configured splits a ServersState answer into every
// configured server and the ones HAProxy routes to.
func Configured(st map[string]ServerState) (configured, routed Servers) {
	configured, routed = Servers{}, Servers{}
	for name, s := range st {
		configured[name] = s.Addr
		if s.Routed() {
			routed[name] = s.Addr
		}
	}
	return configured, routed
}

// Quote quotes s for sh (Serf runs handlers with sh -c; s6 run scripts
// are sh scripts).
func Quote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// Frontend is what clients see over a number of requests through a
// frontend: the backends that answered, how many got a 503 (no server),
// how many failed otherwise and the last such failure.
type Frontend struct {
	Seen      map[string]int
	N503, Bad int
	LastErr   string
}

// Probe sends n requests with get, which returns the name of the backend
// that answered and the status.
func Probe(n int, get func() (string, int, error)) Frontend {
	f := Frontend{Seen: map[string]int{}}
	for range n {
		name, code, err := get()
		switch {
		case err != nil:
			f.Bad++
			f.LastErr = err.Error()
		case code == http.StatusServiceUnavailable:
			f.N503++
		case code != http.StatusOK:
			f.Bad++
			f.LastErr = fmt.Sprintf("status %d", code)
		default:
			f.Seen[name]++
		}
	}
	return f
}

// Names lists the backends that answered, sorted.
func (f Frontend) Names() []string {
	names := make([]string, 0, len(f.Seen))
	for k := range f.Seen {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// Get sends one GET with client and returns the body (its first 4 KiB,
// trimmed: a backend's name) and the status.
func Get(client *http.Client, url string) (string, int, error) {
	resp, err := client.Get(url)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return "", resp.StatusCode, err
	}
	return strings.TrimSpace(string(b)), resp.StatusCode, nil
}
