package handler

// The admin socket guard. The embedded template declares --haproxy-socket
// as HAProxy's stats socket, so one handler line with a typo in it, or
// without it (the serf-hb-sync user event line set up with fewer flags
// than the member line), would install a file that moves or drops the
// socket HAProxy answers on, reload, and leave serf-hb's live path (and
// any operator tooling on that socket) with nothing to talk to. So a new
// file that no longer declares a stats socket which the installed file
// declares and on which HAProxy answers is refused, naming both; render
// --force installs it anyway, for a move that is meant.

import (
	"bufio"
	"bytes"
	"net"
	"slices"
	"strings"
	"time"
)

// statsSockets returns the addresses of a config's "stats socket" lines.
func statsSockets(cfg []byte) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(cfg))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 3 && f[0] == "stats" && f[1] == "socket" {
			out = append(out, f[2])
		}
	}
	return out
}

// socketAnswers reports whether something accepts connections on a stats
// socket address: a path (or unix@path), or ipv4@/ipv6@/HOST:PORT.
func socketAnswers(addr string) bool {
	network, a := "unix", addr
	switch {
	case strings.HasPrefix(addr, "unix@"):
		a = strings.TrimPrefix(addr, "unix@")
	case strings.HasPrefix(addr, "ipv4@"), strings.HasPrefix(addr, "ipv6@"):
		network, a = "tcp", addr[5:]
	case !strings.HasPrefix(addr, "/") && strings.Contains(addr, ":"):
		network = "tcp"
	}
	c, err := net.DialTimeout(network, a, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// checkSocket refuses out when it would drop a stats socket of installed
// on which HAProxy answers.
func (r *run) checkSocket(installed, out []byte) error {
	if r.force || installed == nil {
		return nil
	}
	next := statsSockets(out)
	for _, s := range statsSockets(installed) {
		if slices.Contains(next, s) || !socketAnswers(s) {
			continue
		}
		what := "the new file has no stats socket"
		if len(next) > 0 {
			what = "the new file declares " + strings.Join(next, ", ")
		}
		cause := "this run has no --haproxy-socket"
		if r.cfg.HAProxySocket != "" {
			cause = r.cfg.setting("haproxy-socket", r.cfg.HAProxySocket) + " disagrees with them"
		}
		return usageError("admin socket: the installed file %s declares stats socket %s and the running HAProxy answers there; %s (%s): installing it would move HAProxy's admin socket; hint: every serf-hb handler line (member events and the serf-hb-sync user event) must share the same settings: put them in one config file (--config), or run serf-hb render --force if the move is meant",
			r.cfg.Output, s, what, cause)
	}
	return nil
}
