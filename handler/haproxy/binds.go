package haproxy

// A config can pass haproxy -c and still fail in the new worker: a bind to
// an address this host does not have is the common case, and HAProxy 2.6
// pauses the serving worker's listeners for the ~2 s the new worker spends
// retrying that bind, refusing connections meanwhile, before it gives up.
// With --haproxy-master-socket (HAProxy runs here, in master-worker mode)
// serf-hb refuses such a file before any reload, like a failed check.

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// ForeignBinds returns, for each bind line of cfg whose IP address is not
// on this host, a description naming the line. Unix sockets, wildcards,
// names, and binds that may take foreign addresses (transparent,
// freebind) are not checked.
func ForeignBinds(cfg []byte) []string {
	var bad []string
	sc := bufio.NewScanner(bytes.NewReader(cfg))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		if !bytes.Contains(sc.Bytes(), []byte("bind")) {
			continue // no copy and split of every server line
		}
		f := strings.Fields(sc.Text())
		if len(f) < 2 || f[0] != "bind" || hasAny(f[2:], "transparent", "freebind", "namespace") {
			continue
		}
		for _, a := range strings.Split(f[1], ",") {
			ip, ok := bindIP(a)
			if !ok || ip.IsUnspecified() || local(ip) {
				continue
			}
			bad = append(bad, fmt.Sprintf("line %d: bind %s: %s is not an address of this host", line, f[1], ip))
		}
	}
	return bad
}

// bindIP returns the IP literal of a bind address ("192.0.2.7:80",
// "ipv4@192.0.2.7:80-90", "[::1]:80"), if it has one.
func bindIP(a string) (netip.Addr, bool) {
	if i := strings.IndexByte(a, '@'); i >= 0 {
		switch a[:i] {
		case "ipv4", "ipv6", "tcp", "tcp4", "tcp6", "udp", "udp4", "udp6", "quic4", "quic6":
			a = a[i+1:]
		default:
			return netip.Addr{}, false // unix@, abns@, fd@, sockpair@...
		}
	}
	i := strings.LastIndexByte(a, ':')
	if i <= 0 {
		return netip.Addr{}, false
	}
	ip, err := netip.ParseAddr(strings.Trim(a[:i], "[]"))
	return ip, err == nil
}

// local reports whether ip can be bound on this host: the kernel's answer
// to a bind on an ephemeral port, closed at once.
func local(ip netip.Addr) bool {
	ln, err := net.Listen("tcp", netip.AddrPortFrom(ip, 0).String())
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

func hasAny(words []string, any ...string) bool {
	for _, w := range words {
		for _, a := range any {
			if w == a {
				return true
			}
		}
	}
	return false
}
