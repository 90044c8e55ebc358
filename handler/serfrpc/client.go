// Package serfrpc speaks the three calls of the Serf agent's RPC protocol
// that serf-hb needs (handshake, auth, stats, members) to list the
// cluster's members as the local agent sees them.
//
// Each request is a msgpack map {Command, Seq}, followed by a body map for
// commands that take one; each answer is a map {Seq, Error}, followed by a
// body for commands that return one, unless Error is set. Everything read
// from the connection is outside input: every length is bounded by what
// was received, and a malformed answer is an error, never a panic.
package serfrpc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/tinylib/msgp/msgp"
)

// ipcVersion is the RPC protocol version serf-hb speaks (every Serf agent
// since 0.5 does).
const ipcVersion = 1

// DefaultTimeout bounds Members when its context has no deadline.
const DefaultTimeout = 2 * time.Second

// Member statuses as Serf reports them.
const (
	StatusAlive   = "alive"
	StatusLeaving = "leaving"
	StatusLeft    = "left"
	StatusFailed  = "failed"
)

// Member is one member of the cluster as the local agent reports it.
type Member struct {
	Name   string
	Addr   netip.Addr
	Tags   map[string]string // every tag, "role" included
	Status string            // StatusAlive, StatusLeaving, StatusLeft or StatusFailed
	Self   bool              // the agent that answered
}

// Client is a Serf agent reached over its RPC protocol. The protocol is
// spoken directly rather than through `serf members`: no serf binary on
// PATH, no process of its own inside Serf's event loop, and the auth key
// travels as data instead of on a command line. It is not spoken through
// hashicorp/serf/client either: that client's reads have no deadline, and
// its msgpack codec's package initialization would be paid by every event
// run, sync or not (docs/performance.md has the figure).
type Client struct {
	Addr    string
	AuthKey string
}

// Members asks the agent for every member it knows, and marks the agent's
// own. It gives up when ctx is done.
func (a Client) Members(ctx context.Context) ([]Member, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", a.Addr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		return nil, err
	}
	defer conn.Close()
	// Reads and writes end when ctx does: a past deadline wakes them.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	ms, err := agentMembers(&rpcConn{r: msgp.NewReader(conn), w: msgp.NewWriter(conn)}, a.AuthKey)
	if err != nil && ctx.Err() != nil {
		return nil, context.Cause(ctx)
	}
	return ms, err
}

func agentMembers(c *rpcConn, authKey string) ([]Member, error) {
	err := c.call("handshake", func(w *msgp.Writer) error {
		w.WriteMapHeader(1)
		w.WriteString("Version")
		return w.WriteInt(ipcVersion)
	})
	if err != nil {
		return nil, err
	}
	if authKey != "" {
		err := c.call("auth", func(w *msgp.Writer) error {
			w.WriteMapHeader(1)
			w.WriteString("AuthKey")
			return w.WriteString(authKey)
		})
		if err != nil {
			return nil, err
		}
	}
	if err := c.call("stats", nil); err != nil {
		return nil, err
	}
	self, err := readSelfName(c.r)
	if err != nil {
		return nil, fmt.Errorf("read stats: %v", err)
	}
	if err := c.call("members", nil); err != nil {
		return nil, err
	}
	ms, err := readMembers(c.r)
	if err != nil {
		return nil, fmt.Errorf("read members: %v", err)
	}
	for i := range ms {
		ms[i].Self = ms[i].Name == self
	}
	return ms, nil
}

// rpcConn is one connection to the agent, used for one call at a time.
type rpcConn struct {
	r   *msgp.Reader
	w   *msgp.Writer
	seq uint64
}

// call sends a request, with the body written by body (if not nil), and
// reads the answer's header. A nil error leaves the answer's body, if the
// command has one, to be read.
func (c *rpcConn) call(command string, body func(*msgp.Writer) error) error {
	c.seq++
	c.w.WriteMapHeader(2)
	c.w.WriteString("Command")
	c.w.WriteString(command)
	c.w.WriteString("Seq")
	c.w.WriteUint64(c.seq)
	if body != nil {
		body(c.w)
	}
	if err := c.w.Flush(); err != nil {
		return fmt.Errorf("send %s: %v", command, err)
	}
	var (
		seq    uint64
		errMsg string
	)
	err := readMap(c.r, func(key string) (err error) {
		switch key {
		case "Seq":
			seq, err = c.r.ReadUint64()
		case "Error":
			errMsg, err = readString(c.r)
		default:
			err = c.r.Skip()
		}
		return err
	})
	switch {
	case err != nil:
		return fmt.Errorf("read answer to %s: %v", command, err)
	case seq != c.seq:
		return fmt.Errorf("read answer to %s: sequence number %d, want %d", command, seq, c.seq)
	case errMsg != "":
		return fmt.Errorf("%s: %s", command, errMsg)
	}
	return nil
}

// readSelfName reads the answer to stats, a map of maps of strings, and
// returns the agent's own name (agent.name).
func readSelfName(r *msgp.Reader) (string, error) {
	var name string
	err := readMap(r, func(section string) error {
		if section != "agent" {
			return r.Skip()
		}
		return readMap(r, func(key string) (err error) {
			if key != "name" {
				return r.Skip()
			}
			name, err = readString(r)
			return err
		})
	})
	if err == nil && name == "" {
		err = errors.New("no agent.name in the agent's stats")
	}
	return name, err
}

// readMembers reads the answer to members: {Members: [{Name, Addr, Tags,
// Status, ...}]}. Fields serf-hb does not use are skipped.
func readMembers(r *msgp.Reader) ([]Member, error) {
	var ms []Member
	err := readMap(r, func(key string) error {
		if key != "Members" {
			return r.Skip()
		}
		if r.IsNil() {
			return r.ReadNil()
		}
		n, err := r.ReadArrayHeader()
		if err != nil {
			return err
		}
		ms = make([]Member, 0, min(n, 1<<14))
		for range n {
			m, err := readMember(r)
			if err != nil {
				return err
			}
			ms = append(ms, m)
		}
		return nil
	})
	return ms, err
}

func readMember(r *msgp.Reader) (Member, error) {
	var m Member
	err := readMap(r, func(key string) (err error) {
		switch key {
		case "Name":
			m.Name, err = readString(r)
		case "Status":
			m.Status, err = readString(r)
		case "Addr":
			// A net.IP: 4 or 16 bytes, as bin (or str from an old codec).
			var b []byte
			if b, err = readBytes(r); err == nil && len(b) > 0 {
				addr, ok := netip.AddrFromSlice(b)
				if !ok {
					return fmt.Errorf("member address of %d bytes", len(b))
				}
				m.Addr = addr.Unmap()
			}
		case "Tags":
			if r.IsNil() {
				return r.ReadNil()
			}
			m.Tags = map[string]string{}
			err = readMap(r, func(k string) error {
				v, err := readString(r)
				m.Tags[k] = v
				return err
			})
		default:
			err = r.Skip()
		}
		return err
	})
	return m, err
}

// readMap reads a map with string keys (or nil), calling value for each key
// to read or skip its value.
func readMap(r *msgp.Reader, value func(key string) error) error {
	if r.IsNil() {
		return r.ReadNil()
	}
	n, err := r.ReadMapHeader()
	if err != nil {
		return err
	}
	for range n {
		key, err := readString(r)
		if err != nil {
			return err
		}
		if err := value(key); err != nil {
			return fmt.Errorf("%s: %v", key, err)
		}
	}
	return nil
}

// readString reads a str or bin value (Serf's codec writes strings as str;
// older codecs wrote raw bytes) as a string; nil reads as "".
func readString(r *msgp.Reader) (string, error) {
	b, err := readBytes(r)
	return string(b), err
}

// maxString bounds a string or byte value read from the agent. Serf's own
// are far smaller (a member's tags fit in 512 bytes); a length header
// beyond it is refused before anything is allocated for it, so a broken
// or hostile answer cannot make serf-hb allocate gigabytes.
const maxString = 1 << 20

func readBytes(r *msgp.Reader) ([]byte, error) {
	t, err := r.NextType()
	if err != nil {
		return nil, err
	}
	var n uint32
	switch t {
	case msgp.NilType:
		return nil, r.ReadNil()
	case msgp.BinType:
		n, err = r.ReadBytesHeader()
	default:
		n, err = r.ReadStringHeader()
	}
	if err != nil {
		return nil, err
	}
	if n > maxString {
		return nil, fmt.Errorf("a value of %d bytes, more than the %d serf-hb reads", n, maxString)
	}
	b := make([]byte, n)
	if _, err := r.ReadFull(b); err != nil {
		return nil, err
	}
	return b, nil
}
