// Package master talks to HAProxy's master CLI (the socket of `haproxy -W
// -S PATH`) to reload HAProxy and to verify the reload took: HAProxy
// answers a reload signal before it has read the new configuration, and a
// configuration that passes `haproxy -c` can still fail to load (a bind to
// an address the host lacks), leaving the old worker serving.
//
// Its invariants: every call is bounded in time (Client.Timeout or the
// context, whichever ends first) and connects anew, so a master that
// re-executes itself during a reload never leaves a call hanging; a reload
// is reported successful only once the master shows a new current worker
// and no new failed reload. Errors name the socket and say what to check.
// The package never logs.
package master

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/serf-hb/serf-hb/handler/haproxy"
)

// DefaultTimeout bounds a call when Client.Timeout is zero. A reload
// includes HAProxy parsing its configuration, which takes a few hundred
// milliseconds for thousands of servers and more with many certificates.
const DefaultTimeout = 10 * time.Second

// idleTimeout ends an answer that has started and then stops without the
// master closing the connection. Every command is followed by "quit", so
// the master normally closes at once; the idle timeout is the fallback for
// masters that keep the connection open after answering (2.6 does without
// "quit").
const idleTimeout = 250 * time.Millisecond

// maxAnswer bounds what one answer may hold: show proc is a few lines, the
// startup logs of a reload a few kilobytes.
const maxAnswer = 1 << 20

// Client reaches one HAProxy master CLI.
type Client struct {
	// Addr is the master CLI socket as given to haproxy -S, in
	// haproxy.Dial's syntax: a path, unix@PATH, ipv4@HOST:PORT,
	// ipv6@HOST:PORT or HOST:PORT.
	Addr string
	// Timeout bounds each call, a whole Reload included; zero means
	// DefaultTimeout.
	Timeout time.Duration
	// Log is a file HAProxy's stderr goes to (an s6-log's "current", say),
	// read after a failed reload for HAProxy's own error lines when the
	// master CLI cannot give them (2.6). Empty means: HAProxy's stderr if it
	// is a regular file (/proc/PID/fd/2 of the master), else none.
	Log string
}

func (c *Client) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return DefaultTimeout
}

// exchange sends one command, followed by quit if quit is set, and returns
// the whole answer. The answer ends when the master closes the connection,
// or, once it has started, after idleTimeout of silence; before it starts
// only ctx bounds the wait (a 2.7+ master answers reload only once the new
// configuration is loaded).
func (c *Client) exchange(ctx context.Context, cmd string, quit bool) ([]byte, error) {
	start := time.Now()
	conn, err := haproxy.Dial(ctx, c.Addr)
	if err != nil {
		return nil, c.socketError(cmd, err)
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()

	line := cmd + "\n"
	if quit {
		line = cmd + "; quit\n"
	}
	if _, err := io.WriteString(conn, line); err != nil {
		return nil, c.socketError(cmd, err)
	}
	var answer bytes.Buffer
	buf := make([]byte, 16<<10)
	for {
		n, err := conn.Read(buf)
		answer.Write(buf[:n])
		if answer.Len() > maxAnswer {
			return nil, &SocketError{Addr: c.Addr, Cmd: cmd, Err: fmt.Errorf("answer longer than %d bytes", maxAnswer)}
		}
		if n > 0 && ctx.Err() == nil {
			idle := time.Now().Add(idleTimeout)
			if !deadline.IsZero() && deadline.Before(idle) {
				idle = deadline
			}
			conn.SetReadDeadline(idle)
		}
		if err == nil {
			continue
		}
		if errors.Is(err, io.EOF) || (answer.Len() > 0 && ctx.Err() == nil && isTimeout(err)) {
			return answer.Bytes(), nil
		}
		if answer.Len() > 0 && errors.Is(err, syscall.ECONNRESET) {
			return answer.Bytes(), nil
		}
		if answer.Len() == 0 && isTimeout(err) {
			err = fmt.Errorf("%w within %v", errNoAnswer, time.Since(start).Round(time.Millisecond))
		}
		return nil, c.socketError(cmd, err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (c *Client) socketError(cmd string, err error) *SocketError {
	// The net.OpError repeats the address the message starts with.
	var oe *net.OpError
	if errors.As(err, &oe) {
		err = oe.Err
	}
	return &SocketError{Addr: c.Addr, Cmd: cmd, Err: err}
}

// errNoAnswer is a master CLI that accepted the connection and said
// nothing before the deadline.
var errNoAnswer = errors.New("no answer")

// SocketError is a master CLI that could not be reached or did not answer.
type SocketError struct {
	Addr string
	Cmd  string // the command sent, or being sent
	Err  error
}

func (e *SocketError) Unwrap() error { return e.Err }

func (e *SocketError) Error() string {
	msg := fmt.Sprintf("master CLI %s: %s: %v", e.Addr, e.Cmd, e.Err)
	run := fmt.Sprintf("haproxy -W -S %s ... (in an s6 run script: exec haproxy -W -db -S %s -f CFG)", e.Addr, e.Addr)
	switch {
	case errors.Is(e.Err, syscall.ENOENT):
		return msg + "; hint: start haproxy in master-worker mode with its master CLI on this socket: " + run
	case errors.Is(e.Err, syscall.ECONNREFUSED):
		return msg + "; hint: nothing listens there (a socket file outlives the haproxy that made it): is haproxy running, in master-worker mode? " + run
	case errors.Is(e.Err, syscall.EACCES):
		return msg + "; hint: run serf-hb as a user that may connect (the socket's owner, or set mode/uid with -S PATH,mode,600,uid,N)"
	case errors.Is(e.Err, errBadAnswer) && strings.Contains(e.Err.Error(), "Permission denied"):
		return msg + "; hint: reloading takes the master CLI's level operator or admin (the default; -S " + e.Addr + ",level,admin)"
	case errors.Is(e.Err, errNoAnswer), errors.Is(e.Err, errBadAnswer):
		return msg + "; hint: is " + e.Addr + " haproxy's master CLI (-S on haproxy's command line), and not a stats socket or another program? " + run
	}
	return msg
}

// transient reports whether err is what a master re-executing itself
// during a reload causes: worth asking again.
func transient(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ENOENT) ||
		errors.Is(err, io.EOF) || errors.Is(err, errEmpty)
}

// errEmpty is an answer with nothing in it: the master closed the
// connection without answering, as it does when it re-executes.
var errEmpty = errors.New("the master closed the connection without answering")

// bound returns ctx limited to the client's timeout.
func (c *Client) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.timeout())
}
