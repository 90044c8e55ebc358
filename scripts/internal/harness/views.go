package harness

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
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
	Addr      string // srv_addr:srv_port
	Op, Admin int    // srv_op_state, srv_admin_state
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
	return parseServersState(out), nil
}

func parseServersState(out string) map[string]ServerState {
	m := map[string]ServerState{}
	for _, line := range strings.Split(out, "\n") {
		// be_id be_name srv_id srv_name srv_addr srv_op_state
		// srv_admin_state ... srv_port (field 18)
		f := strings.Fields(line)
		if len(f) < 19 || strings.HasPrefix(f[0], "#") {
			continue
		}
		op, _ := strconv.Atoi(f[5])
		admin, _ := strconv.Atoi(f[6])
		m[f[3]] = ServerState{Addr: net.JoinHostPort(f[4], f[18]), Op: op, Admin: admin}
	}
	return m
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
