package haproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"time"
)

// defaultTimeout bounds one command when Client.Timeout is zero.
const defaultTimeout = 5 * time.Second

// maxReply bounds the bytes read for one reply: `show servers state` at
// 10,000 servers is about 1 MB.
const maxReply = 64 << 20

// Client sends commands to HAProxy's runtime API, one command per
// connection (Commands: several that reply nothing on success).
type Client struct {
	// Addr is the stats socket, in Dial's syntax: a path, unix@PATH,
	// ipv4@HOST:PORT, ipv6@HOST:PORT or HOST:PORT.
	Addr string
	// Timeout bounds each command, dial to last byte; 0 means 5 s.
	Timeout time.Duration
}

// replyError is a reply from HAProxy that is not the one meaning success.
type replyError struct {
	addr, cmd, reply string
}

func (e *replyError) Error() string {
	first, _, _ := strings.Cut(e.reply, "\n")
	msg := fmt.Sprintf("haproxy %s: %s: %s", e.addr, e.cmd, first)
	switch {
	case first == "Permission denied":
		msg += "; hint: the socket's level is below admin: give its 'stats socket' line 'level admin'"
	case strings.HasPrefix(first, "Unknown command"):
		msg += "; hint: HAProxy older than 2.6, or a master CLI (-S) rather than a worker's stats socket"
	}
	return msg
}

// Command sends cmd and returns HAProxy's reply without its trailing
// newlines. A reply other than the one meaning success for a command this
// package knows (add/del/set server, set weight, enable health, shutdown
// sessions, show servers state, show stat), and for any command a
// "Permission denied" or "Unknown command" reply, is an error quoting the
// reply's first line.
func (c Client) Command(ctx context.Context, cmd string) (string, error) {
	if !single(cmd) {
		return "", fmt.Errorf("haproxy %s: command %q: empty, or more than one command", c.Addr, cmd)
	}
	reply, err := c.send(ctx, cmd)
	if err == nil && !success(cmd, reply) {
		err = &replyError{addr: c.Addr, cmd: cmd, reply: reply}
	}
	return reply, err
}

// Commands sends cmds on one connection ("a; b"), each a command whose
// reply on success is empty (set server, set weight, enable health,
// shutdown sessions): a connection, and a turn of HAProxy's event loop,
// for each command after the first. HAProxy runs every one of them
// whatever the one before replied, and answers an empty line for each
// that succeeds (2.6 and 3.0, measured: live_test.go), so an empty reply
// means all of them succeeded; anything else is an error quoting it.
func (c Client) Commands(ctx context.Context, cmds ...string) error {
	for _, cmd := range cmds {
		if !single(cmd) || !success(cmd, "") {
			return fmt.Errorf("haproxy %s: command %q: empty, more than one command, or one that replies on success", c.Addr, cmd)
		}
	}
	if len(cmds) == 0 {
		return nil
	}
	line := strings.Join(cmds, "; ")
	reply, err := c.send(ctx, line)
	if err == nil && reply != "" {
		err = &replyError{addr: c.Addr, cmd: line, reply: reply}
	}
	return err
}

// single reports whether cmd is one command: not empty, no ';' or newline
// that would make HAProxy read several.
func single(cmd string) bool {
	return !strings.ContainsAny(cmd, "\n;") && strings.TrimSpace(cmd) != ""
}

// send sends one line to the runtime API and returns HAProxy's reply
// without its trailing newlines.
func (c Client) send(ctx context.Context, line string) (string, error) {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := Dial(ctx, c.Addr)
	if err != nil {
		return "", c.dialError(line, err)
	}
	defer conn.Close()
	// The deadline bounds a socket that accepts and never answers; the
	// AfterFunc ends the wait early when the caller's ctx is cancelled.
	deadline, _ := ctx.Deadline()
	conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := io.WriteString(conn, line+"\n"); err != nil {
		return "", c.ioError(ctx, line, timeout, err)
	}
	// Outside interactive mode HAProxy closes the connection after the
	// reply: EOF is its end.
	// Read into a builder with room for a short reply at once: its String
	// is the bytes read, where io.ReadAll's doubling from 512 bytes and a
	// string copy would cost ~3 MB of copies for a 1 MB reply.
	var b strings.Builder
	b.Grow(32 << 10)
	if _, err := io.Copy(&b, io.LimitReader(conn, maxReply)); err != nil {
		return "", c.ioError(ctx, line, timeout, err)
	}
	return strings.TrimRight(b.String(), "\n"), nil
}

// ErrTimeout is HAProxy not answering a command in time.
var ErrTimeout = errors.New("no complete answer in time")

func (c Client) dialError(cmd string, err error) error {
	msg := fmt.Sprintf("haproxy %s: %s: %v", c.Addr, cmd, err)
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("haproxy %s: %s: %w (connecting); hint: is HAProxy stuck?", c.Addr, cmd, ErrTimeout)
	case errors.Is(err, os.ErrNotExist):
		msg += fmt.Sprintf("; hint: add 'stats socket %s mode 600 level admin' to the global section of haproxy.cfg, and reload HAProxy", c.Addr)
	case errors.Is(err, syscall.ECONNREFUSED):
		msg += "; hint: is HAProxy running, with this 'stats socket'?"
	case errors.Is(err, os.ErrPermission):
		msg += "; hint: run as the socket's owner (its 'stats socket' line sets user and mode)"
	}
	return errors.New(msg)
}

func (c Client) ioError(ctx context.Context, cmd string, timeout time.Duration, err error) error {
	if errors.Is(ctx.Err(), context.Canceled) {
		return fmt.Errorf("haproxy %s: %s: %w", c.Addr, cmd, ctx.Err())
	}
	if ctx.Err() != nil || errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("haproxy %s: %s: %w (timeout %v); hint: is this HAProxy's stats socket, and is HAProxy stuck?", c.Addr, cmd, ErrTimeout, timeout)
	}
	return fmt.Errorf("haproxy %s: %s: %v", c.Addr, cmd, err)
}

// success reports whether reply is the answer meaning success to cmd, as
// HAProxy 2.6.12 gives it (measured: see live_test.go).
func success(cmd, reply string) bool {
	first, _, _ := strings.Cut(reply, "\n")
	if first == "Permission denied" || strings.HasPrefix(first, "Unknown command") {
		return false
	}
	w := strings.Fields(cmd)
	verb := strings.Join(w[:min(2, len(w))], " ")
	switch {
	case verb == "add server":
		return reply == "New server registered."
	case verb == "del server":
		return reply == "Server deleted."
	case w[0] == "wait":
		return reply == "Done."
	case verb == "set server" && len(w) > 3 && w[3] == "addr":
		// "IP changed from ..., port changed from ...", or for the same
		// address "no need to change the addr ..." (2.6) or "nothing
		// changed" (3.0); failures start "Invalid" or "No such".
		return strings.HasPrefix(reply, "IP changed from ") || strings.HasPrefix(reply, "no need to change the addr") || reply == "nothing changed"
	case verb == "set server", verb == "set weight", verb == "enable health", verb == "shutdown sessions":
		return reply == ""
	case strings.HasPrefix(cmd, "show servers state"):
		return strings.HasPrefix(reply, "1\n# be_id ")
	case verb == "show stat":
		return strings.HasPrefix(reply, "# pxname,")
	}
	return true
}
