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
	"context"
	"slices"
	"strings"
	"time"

	"github.com/serf-hb/serf-hb/handler/haproxy"
)

// checkSocket refuses out when it would drop a stats socket of installed
// on which HAProxy answers.
func (r *run) checkSocket(installed, out []byte) error {
	if r.force || installed == nil {
		return nil
	}
	next := haproxy.StatsSockets(out)
	for _, s := range haproxy.StatsSockets(installed) {
		if slices.Contains(next, s) || !r.answers(s) {
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

// answers reports whether something accepts connections on a stats
// socket address, within a second.
func (r *run) answers(addr string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return haproxy.Answers(ctx, addr)
}
