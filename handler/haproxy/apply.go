package haproxy

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// RemoveMode is how Apply takes a server out.
type RemoveMode int

const (
	// Drain is for a member that left: no new streams go to the server,
	// those it carries finish, then it is deleted.
	Drain RemoveMode = iota
	// Cut is for a member that failed: the server's streams are shut at
	// once and it is deleted.
	Cut
)

// Options tunes Apply.
type Options struct {
	// Mode says how to remove the server called name; nil drains all.
	Mode func(name string) RemoveMode
	// DrainTimeout bounds the wait for draining servers to carry no more
	// streams. Those still busy then are left draining, reported in
	// Applied.Pending, for Finish to delete later. 0 does not wait.
	DrainTimeout time.Duration
}

// Applied is what Apply (or Finish) did, each server as "backend/server".
type Applied struct {
	Added       []string
	Readdressed []string
	Reweighted  []string
	Removed     []string
	Pending     []string // left draining: deletion pending
}

// String gives the counts and names, for a log line.
func (a Applied) String() string {
	var parts []string
	for _, p := range []struct {
		what  string
		names []string
	}{{"added", a.Added}, {"readdressed", a.Readdressed}, {"reweighted", a.Reweighted},
		{"removed", a.Removed}, {"draining", a.Pending}} {
		if len(p.names) > 0 {
			parts = append(parts, fmt.Sprintf("%s %d (%s)", p.what, len(p.names), strings.Join(p.names, " ")))
		}
	}
	if len(parts) == 0 {
		return "no change"
	}
	return strings.Join(parts, ", ")
}

// Polling bounds: how often a drain checks the servers' streams, and how
// long a deletion is retried while HAProxy lets go of connections (shut
// sessions and purged idle connections take a moment).
const (
	drainPoll   = 100 * time.Millisecond
	deleteTries = 20
	deletePause = 25 * time.Millisecond
)

// The refusals Apply acts on, as HAProxy 2.6.12 words them.
const (
	replyExists = "Already exists a server with the same name in backend."
	replyBusy   = "Server still has connections attached to it, cannot remove it."
	replyNoSuch = "No such server."
)

// Apply makes the plan's changes on the running HAProxy: in each backend
// it adds servers (never with the keyword `enabled`, haproxy#2497; with
// `check`, health checks are enabled before the server enters rotation),
// readdresses and reweights, then removes, each as Options.Mode says;
// last it waits, up to Options.DrainTimeout, for draining servers to be
// deletable. On a refused command it stops and returns what it did with
// an error naming the command and HAProxy's reply: the caller reloads.
func (c Client) Apply(ctx context.Context, p Plan, o Options) (Applied, error) {
	var a Applied
	var draining []liveServer
	for _, b := range p {
		for _, s := range b.Add {
			if err := c.add(ctx, b.Backend, s); err != nil {
				return a, err
			}
			a.Added = append(a.Added, b.Backend+"/"+s.Name)
		}
		for _, s := range b.Readdress {
			cmd := fmt.Sprintf("set server %s/%s addr %s port %d", b.Backend, s.Name, s.IP, s.Port)
			if _, err := c.Command(ctx, cmd); err != nil {
				return a, err
			}
			a.Readdressed = append(a.Readdressed, b.Backend+"/"+s.Name)
		}
		for _, s := range b.Reweight {
			if _, err := c.Command(ctx, fmt.Sprintf("set weight %s/%s %d", b.Backend, s.Name, s.Weight)); err != nil {
				return a, err
			}
			a.Reweighted = append(a.Reweighted, b.Backend+"/"+s.Name)
		}
		for _, s := range b.Remove {
			if o.Mode != nil && o.Mode(s.Name) == Cut {
				if err := c.remove(ctx, b.Backend, s.Name, true, &a); err != nil {
					return a, err
				}
				continue
			}
			_, err := c.Command(ctx, fmt.Sprintf("set server %s/%s state drain", b.Backend, s.Name))
			if isReply(err, replyNoSuch) {
				a.Removed = append(a.Removed, b.Backend+"/"+s.Name)
				continue
			}
			if err != nil {
				return a, err
			}
			draining = append(draining, liveServer{Backend: b.Backend, Name: s.Name})
		}
	}
	return a, c.drain(ctx, draining, o.DrainTimeout, &a)
}

// add adds s to backend, checks enabled first, and puts it in rotation
// unless the file has it `disabled`. A server of that name left pending
// deletion by an earlier drain is cut first: the member came back.
func (c Client) add(ctx context.Context, backend string, s Server) error {
	words := []string{"add server", backend + "/" + s.Name, netip.AddrPortFrom(s.IP, uint16(s.Port)).String()}
	if s.Weight != 1 {
		words = append(words, "weight", strconv.Itoa(s.Weight))
	}
	if s.Check {
		words = append(words, "check")
	}
	disabled := false
	for _, kw := range keywordSpans(s.Keywords) {
		switch kw[0] {
		case "enabled":
			continue // the default; sent, it breaks the backend on 2.6 (haproxy#2497)
		case "disabled":
			disabled = true
		}
		words = append(words, kw...)
	}
	cmd := strings.Join(words, " ")
	_, err := c.Command(ctx, cmd)
	if isReply(err, replyExists) {
		if err := c.cutLeftover(ctx, backend, s.Name, err); err != nil {
			return err
		}
		_, err = c.Command(ctx, cmd)
	}
	if err != nil {
		return err
	}
	if s.Check {
		if _, err := c.Command(ctx, fmt.Sprintf("enable health %s/%s", backend, s.Name)); err != nil {
			return err
		}
	}
	if !disabled {
		if _, err := c.Command(ctx, fmt.Sprintf("set server %s/%s state ready", backend, s.Name)); err != nil {
			return err
		}
	}
	return nil
}

// cutLeftover deletes server name of backend if it is pending deletion;
// otherwise it returns exists, the error of the add that found it.
func (c Client) cutLeftover(ctx context.Context, backend, name string, exists error) error {
	live, err := c.serversState(ctx, backend)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(live, func(l liveServer) bool { return l.Name == name })
	if i < 0 || !live[i].pendingDeletion() {
		return exists
	}
	var ignored Applied
	if err := c.remove(ctx, backend, name, true, &ignored); err != nil {
		return err
	}
	if len(ignored.Removed) == 0 {
		return fmt.Errorf("%w; a server of that name is pending deletion and still has connections", exists)
	}
	return nil
}

// remove puts a server in maintenance, shuts its streams if cut, and
// deletes it, retrying a bounded number of times while HAProxy still
// counts connections. It records the server as removed, or as pending
// when it keeps connections; a server already gone counts as removed.
func (c Client) remove(ctx context.Context, backend, name string, cut bool, a *Applied) error {
	bs := backend + "/" + name
	cmds := []string{"set server " + bs + " state maint"}
	if cut {
		cmds = append(cmds, "shutdown sessions server "+bs)
	}
	for _, cmd := range cmds {
		_, err := c.Command(ctx, cmd)
		if isReply(err, replyNoSuch) {
			a.Removed = append(a.Removed, bs)
			return nil
		}
		if err != nil {
			return err
		}
	}
	for try := 1; ; try++ {
		_, err := c.Command(ctx, "del server "+bs)
		switch {
		case err == nil, isReply(err, replyNoSuch):
			a.Removed = append(a.Removed, bs)
			return nil
		case !isReply(err, replyBusy):
			return err
		case try == deleteTries:
			a.Pending = append(a.Pending, bs)
			return nil
		}
		if err := sleep(ctx, deletePause); err != nil {
			return fmt.Errorf("delete %s: %w", bs, err)
		}
	}
}

// drain waits for the draining servers to carry no streams and deletes
// each as soon as it does; after timeout the rest stay pending.
func (c Client) drain(ctx context.Context, servers []liveServer, timeout time.Duration, a *Applied) error {
	if len(servers) == 0 {
		return nil
	}
	// `show stat` wants the server's numeric id: one `show servers state`
	// per backend gives them.
	ids := map[string]int{}
	for _, s := range servers {
		if _, ok := ids[s.Backend+"/"]; ok {
			continue
		}
		ids[s.Backend+"/"] = 0
		live, err := c.serversState(ctx, s.Backend)
		if err != nil {
			return err
		}
		for _, l := range live {
			ids[l.String()] = l.ID
		}
	}
	deadline := time.Now().Add(timeout)
	for {
		var busy []liveServer
		for _, s := range servers {
			id, ok := ids[s.String()]
			n := 0
			if ok {
				var err error
				if n, err = c.busy(ctx, s.Backend, id); err != nil {
					return err
				}
			}
			if n > 0 {
				busy = append(busy, s)
				continue
			}
			if err := c.remove(ctx, s.Backend, s.Name, false, a); err != nil {
				return err
			}
		}
		servers = busy
		if len(servers) == 0 || !time.Now().Before(deadline) {
			break
		}
		if err := sleep(ctx, min(drainPoll, time.Until(deadline))); err != nil {
			return fmt.Errorf("drain %s: %w", servers[0], err)
		}
	}
	for _, s := range servers {
		a.Pending = append(a.Pending, s.String())
	}
	return nil
}

func isReply(err error, reply string) bool {
	var re *replyError
	return errors.As(err, &re) && re.reply == reply
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
