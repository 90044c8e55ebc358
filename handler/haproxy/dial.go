package haproxy

import (
	"context"
	"net"
	"strings"
)

// Dial connects to an HAProxy socket (a stats socket, the master CLI)
// written as haproxy.cfg's `stats socket` and `haproxy -S` write it: a
// path (anything holding a '/'), unix@PATH, ipv4@HOST:PORT,
// ipv6@HOST:PORT, or HOST:PORT. Every serf-hb connection to HAProxy goes
// through it, so that every flag takes the same address syntax.
func Dial(ctx context.Context, addr string) (net.Conn, error) {
	network, a := Network(addr)
	var d net.Dialer
	return d.DialContext(ctx, network, a)
}

// Network splits a socket address of Dial's syntax into a network and an
// address for net.Dial.
func Network(addr string) (network, address string) {
	switch {
	case strings.HasPrefix(addr, "unix@"):
		return "unix", strings.TrimPrefix(addr, "unix@")
	case strings.HasPrefix(addr, "ipv4@"):
		return "tcp4", strings.TrimPrefix(addr, "ipv4@")
	case strings.HasPrefix(addr, "ipv6@"):
		return "tcp6", strings.TrimPrefix(addr, "ipv6@")
	case strings.Contains(addr, "/"):
		return "unix", addr
	}
	if _, _, err := net.SplitHostPort(addr); err == nil {
		return "tcp", addr
	}
	return "unix", addr
}

// Answers reports whether something accepts connections on a socket
// address within ctx.
func Answers(ctx context.Context, addr string) bool {
	c, err := Dial(ctx, addr)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
