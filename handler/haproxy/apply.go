package haproxy

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Options tunes Apply.
type Options struct {
	// Revive reports whether server s of backend, found in HAProxy out of
	// rotation (an earlier removal retired it), was defined as s is but
	// for its address and weight, so that putting it back in rotation at
	// s's address and weight is the same as adding s. nil: never, and such
	// a server is deleted first where HAProxy can say that is safe.
	Revive func(backend string, s Server) bool
	// Delete lets Apply delete the servers it removes where HAProxy can
	// say that is safe (HAProxy 2.9 and later): false leaves them all
	// retired, in maintenance.
	Delete bool
}

// Applied is what Apply (or Delete) did, each server as "backend/server".
type Applied struct {
	Added       []string
	Revived     []string // back in rotation in place: a retired server of that name
	Readdressed []string
	Reweighted  []string
	Removed     []string // deleted, or already gone
	Retired     []string // in maintenance, not deleted (yet)
}

// String gives the counts and names, for a log line.
func (a Applied) String() string {
	var parts []string
	for _, p := range []struct {
		what  string
		names []string
	}{{"added", a.Added}, {"revived", a.Revived}, {"readdressed", a.Readdressed}, {"reweighted", a.Reweighted},
		{"removed", a.Removed}, {"retired", a.Retired}} {
		if len(p.names) > 0 {
			parts = append(parts, fmt.Sprintf("%s %d (%s)", p.what, len(p.names), strings.Join(p.names, " ")))
		}
	}
	if len(parts) == 0 {
		return "no change"
	}
	return strings.Join(parts, ", ")
}

// The replies Apply acts on, as HAProxy 2.6.12 and 3.0.11 word them.
const (
	replyExists  = "Already exists a server with the same name in backend."
	replyNoSuch  = "No such server."
	replyUnknown = "Unknown command"
)

// Apply makes the plan's changes on the running HAProxy: in each backend
// it adds servers (never with the keyword `enabled`, haproxy#2497; with
// `check`, health checks are enabled before the server enters rotation),
// readdresses and reweights, then removes.
//
// A removal never waits and never cuts a stream: the server is put in
// maintenance (`set server B/S state maint`), so that no new stream goes
// to it and those it carries finish (a request queued on it is
// redispatched), and it is deleted only where HAProxy can say nothing
// refers to it any more (Options.Delete and Delete below); otherwise it
// stays retired, in maintenance, until a later run deletes it or a reload
// drops it. A retired server whose member comes back is put back in
// rotation in place (Options.Revive), its streams untouched.
//
// On a refused command Apply stops and returns what it did with an error
// naming the command and HAProxy's reply: the caller reloads.
func (c Client) Apply(ctx context.Context, p Plan, o Options) (Applied, error) {
	var a Applied
	del := o.Delete // off once HAProxy says it cannot delete safely
	for _, b := range p {
		for _, s := range b.Add {
			revived, err := c.add(ctx, b.Backend, s, o)
			if err != nil {
				return a, err
			}
			if revived {
				a.Revived = append(a.Revived, b.Backend+"/"+s.Name)
			} else {
				a.Added = append(a.Added, b.Backend+"/"+s.Name)
			}
		}
		for _, s := range b.Readdress {
			if err := c.setAddr(ctx, b.Backend, s); err != nil {
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
			if err := c.retire(ctx, b.Backend+"/"+s.Name, &del, &a); err != nil {
				return a, err
			}
		}
	}
	return a, nil
}

// add adds s to backend, checks enabled first, and puts it in rotation
// unless the file has it `disabled`. A server of that name that an
// earlier removal retired is revived in place when Options.Revive allows,
// else deleted first where that is safe; otherwise the add fails.
func (c Client) add(ctx context.Context, backend string, s Server, o Options) (revived bool, err error) {
	words := []string{"add server", backend + "/" + s.Name, netip.AddrPortFrom(s.IP, uint16(s.Port)).String()}
	if s.Weight != 1 {
		words = append(words, "weight", strconv.Itoa(s.Weight))
	}
	if s.Check {
		words = append(words, "check")
	}
	for _, kw := range keywordSpans(s.Keywords) {
		if kw[0] == "enabled" {
			continue // the default; sent, it breaks the backend on 2.6 (haproxy#2497) and 3.0 refuses it
		}
		words = append(words, kw...)
	}
	cmd := strings.Join(words, " ")
	_, err = c.Command(ctx, cmd)
	if isReply(err, replyExists) {
		var again bool
		revived, again, err = c.leftover(ctx, backend, s, o, err)
		if err != nil || revived {
			return revived, err
		}
		if again {
			_, err = c.Command(ctx, cmd)
		}
	}
	if err != nil {
		return false, err
	}
	return false, c.enable(ctx, backend, s)
}

// enable turns a server's health checks on, when it has them, and puts it
// in rotation unless the file has it disabled: both on one connection
// (Commands), which spares the new server a round trip before its first
// request (~0.3 ms under load). Should the first fail, HAProxy still runs
// the second; the error makes the run reload either way.
func (c Client) enable(ctx context.Context, backend string, s Server) error {
	bs := backend + "/" + s.Name
	var cmds []string
	if s.Check {
		cmds = append(cmds, "enable health "+bs)
	}
	if !slices.Contains(s.Keywords, "disabled") {
		cmds = append(cmds, "set server "+bs+" state ready")
	}
	return c.Commands(ctx, cmds...)
}

// leftover deals with a server of s's name that HAProxy already has when s
// is to be added: one retired by an earlier removal is revived in place
// (revived) or, where HAProxy can say it is safe, deleted so that the add
// can be sent again (again). Anything else returns exists, the error of
// the add that found it.
func (c Client) leftover(ctx context.Context, backend string, s Server, o Options, exists error) (revived, again bool, err error) {
	live, err := c.serversState(ctx, backend)
	if err != nil {
		return false, false, err
	}
	i := slices.IndexFunc(live, func(l liveServer) bool { return l.Name == s.Name })
	if i < 0 || !live[i].pendingDeletion() {
		return false, false, exists
	}
	if o.Revive != nil && o.Revive(backend, s) {
		return true, false, c.revive(ctx, backend, s)
	}
	bs := backend + "/" + s.Name
	deleted, err := c.delete(ctx, bs)
	if errors.Is(err, errNoSafeDelete) {
		return false, false, fmt.Errorf("%w; a retired server of that name is still there, defined otherwise, and this HAProxy cannot delete it safely (no 'wait srv-removable' before 2.9)", exists)
	}
	if err != nil {
		return false, false, err
	}
	if !deleted {
		return false, false, fmt.Errorf("%w; a retired server of that name, defined otherwise, still has streams, so it cannot be deleted yet", exists)
	}
	return false, true, nil
}

// revive puts a retired server back in rotation at s's address and
// weight. Its health is set up first, as a server just added starts: the
// checks it failed while its member was away must not hold it out.
func (c Client) revive(ctx context.Context, backend string, s Server) error {
	bs := backend + "/" + s.Name
	if err := c.setAddr(ctx, backend, s); err != nil {
		return err
	}
	if _, err := c.Command(ctx, fmt.Sprintf("set weight %s %d", bs, s.Weight)); err != nil {
		return err
	}
	if s.Check {
		if _, err := c.Command(ctx, "set server "+bs+" health up"); err != nil {
			return err
		}
	}
	return c.enable(ctx, backend, s)
}

func (c Client) setAddr(ctx context.Context, backend string, s Server) error {
	_, err := c.Command(ctx, fmt.Sprintf("set server %s/%s addr %s port %d", backend, s.Name, s.IP, s.Port))
	return err
}

// retire takes server bs out of rotation without cutting a stream, and
// deletes it when *del is set and HAProxy says that is safe; an HAProxy
// that cannot say clears *del, so that the rest of the plan does not ask
// again. A server already gone counts as removed.
func (c Client) retire(ctx context.Context, bs string, del *bool, a *Applied) error {
	_, err := c.Command(ctx, "set server "+bs+" state maint")
	if isReply(err, replyNoSuch) {
		a.Removed = append(a.Removed, bs)
		return nil
	}
	if err != nil {
		return err
	}
	deleted := false
	if *del {
		deleted, err = c.delete(ctx, bs)
		switch {
		case errors.Is(err, errNoSafeDelete):
			*del = false
		case err != nil:
			return err
		}
	}
	if deleted {
		a.Removed = append(a.Removed, bs)
	} else {
		a.Retired = append(a.Retired, bs)
	}
	return nil
}

// Delete deletes the retired servers (each "backend/server", in
// maintenance) that HAProxy says are removable now, without waiting for
// the others, which it returns as still retired. A server already gone
// counts as removed. On an HAProxy that cannot say (before 2.9), nothing
// is deleted.
func (c Client) Delete(ctx context.Context, servers []string) (Applied, error) {
	var a Applied
	for i, bs := range servers {
		deleted, err := c.delete(ctx, bs)
		if errors.Is(err, errNoSafeDelete) {
			a.Retired = append(a.Retired, servers[i:]...)
			return a, nil
		}
		if err != nil {
			return a, err
		}
		if deleted {
			a.Removed = append(a.Removed, bs)
		} else {
			a.Retired = append(a.Retired, bs)
		}
	}
	return a, nil
}

// errNoSafeDelete is HAProxy lacking `wait srv-removable`.
var errNoSafeDelete = errors.New("HAProxy has no 'wait srv-removable' (before 2.9): servers are never deleted at runtime")

// delete deletes server bs, in maintenance, if HAProxy says nothing refers
// to it any more, and reports whether it is gone.
//
// Before 2.9, HAProxy's `del server` accepts a server that a stream still
// points at while it waits to retry a refused connection (it counts
// neither in scur nor in qcur), and the worker then crashes when the
// stream wakes up (haproxy#2298, #2323: a segfault or a double free,
// measured on Debian 12's 2.6.12). 2.9 fixed it and added `wait <ms>
// srv-removable`, which answers "Done." once the server can go; an HAProxy
// that does not know the command keeps the server, retired, until its next
// reload: a few KB of memory, against a crash of the balancer. `wait` is
// given 1 ms, the least it takes: a busy server is left for a later run,
// never waited for. 3.3 also refuses `del server` while idle connections
// remain; that refusal keeps the server retired too.
func (c Client) delete(ctx context.Context, bs string) (bool, error) {
	reply, err := c.Command(ctx, "wait 1 srv-removable "+bs)
	switch {
	case strings.HasPrefix(reply, replyUnknown):
		return false, errNoSafeDelete
	case reply != "Done.":
		if isReply(err, "Failed.") {
			// "Failed." also answers a server that does not exist.
			if _, err := c.serverState(ctx, bs); errors.Is(err, errNoServer) {
				return true, nil
			}
		}
		var re *replyError
		if err != nil && !errors.As(err, &re) {
			return false, err // the socket, not HAProxy's answer
		}
		return false, nil
	}
	_, err = c.Command(ctx, "del server "+bs)
	var re *replyError
	switch {
	case err == nil, isReply(err, replyNoSuch):
		return true, nil
	case errors.As(err, &re):
		return false, nil // still referenced after all: a later run tries again
	}
	return false, err
}

var errNoServer = errors.New("no such server")

// serverState returns the live state of server bs ("backend/server").
func (c Client) serverState(ctx context.Context, bs string) (liveServer, error) {
	backend, name, _ := strings.Cut(bs, "/")
	live, err := c.serversState(ctx, backend)
	if err != nil {
		return liveServer{}, err
	}
	for _, l := range live {
		if l.Name == name {
			return l, nil
		}
	}
	return liveServer{}, errNoServer
}

func isReply(err error, reply string) bool {
	var re *replyError
	return errors.As(err, &re) && re.reply == reply
}
