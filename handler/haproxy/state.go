package haproxy

// Reading the running state back: `show servers state` (what servers a
// backend has, where, at which weight, in which admin state).

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/renameio/v2"
)

// Admin state bits of `show servers state` (management.txt, 2.6).
const (
	adminForcedMaint = 0x01 // set server state maint
	adminForcedDrain = 0x08 // set server state drain
)

// liveServer is one data line of `show servers state`.
type liveServer struct {
	Backend string
	ID      int
	Name    string
	Addr    string // "-" when the server has none
	Port    int
	Admin   int
	UWeight int
	line    string // as HAProxy wrote it
}

// pendingDeletion reports whether serf-hb (or an operator) took the server
// out of rotation: a server absent from the file in this state is one whose
// drain or deletion has not finished.
func (s liveServer) pendingDeletion() bool {
	return s.Admin&(adminForcedMaint|adminForcedDrain) != 0
}

func (s liveServer) String() string { return s.Backend + "/" + s.Name }

// runsAt reports whether the live server runs at the address and port
// the file's server f gives; an address that is not an IP literal in the
// file is not compared (HAProxy shows what the name resolved to).
func (s liveServer) runsAt(f Server) bool {
	ip, _ := netip.ParseAddr(s.Addr)
	return !f.IP.IsValid() || ip.Unmap() == f.IP && s.Port == f.Port
}

// stateColumns are the columns of `show servers state` this package reads.
var stateColumns = []string{"be_name", "srv_id", "srv_name", "srv_addr", "srv_admin_state", "srv_uweight", "srv_port"}

// parseServersState reads the reply of `show servers state`: a version
// line "1", a header line "# be_id be_name ...", then one line per server
// with space-separated fields. Columns are found by name, so that versions
// adding columns still parse.
func parseServersState(reply string) ([]liveServer, error) {
	rest, ok := strings.CutPrefix(reply, "1\n")
	if !ok {
		return nil, fmt.Errorf("parse show servers state: first line is not format version 1")
	}
	header, rest, _ := strings.Cut(rest, "\n")
	hf, ok := strings.CutPrefix(header, "# ")
	if !ok {
		return nil, fmt.Errorf("parse show servers state: second line is not a '# ' header")
	}
	col := map[string]int{}
	for i, name := range strings.Fields(hf) {
		col[name] = i
	}
	idx := make([]int, len(stateColumns))
	for i, name := range stateColumns {
		j, ok := col[name]
		if !ok {
			return nil, fmt.Errorf("parse show servers state: no column %s", name)
		}
		idx[i] = j
	}
	// A whole backend's reply is read twice a live run, 10,000 lines of
	// ~25 fields at 10,000 servers: the lines are walked in place and
	// their fields split into one reused slice.
	servers := make([]liveServer, 0, strings.Count(rest, "\n")+1)
	var f []string
	for n := 0; rest != ""; n++ {
		var line string
		line, rest, _ = strings.Cut(rest, "\n")
		if line == "" || line[0] == '#' {
			continue
		}
		f = appendFields(f[:0], line)
		bad := func() error {
			return fmt.Errorf("parse show servers state line %d: %q: want columns %s, numbers but for the names and address", n+3, line, strings.Join(stateColumns, " "))
		}
		if len(f) <= slices.Max(idx) {
			return nil, bad()
		}
		s := liveServer{Backend: f[idx[0]], Name: f[idx[2]], Addr: f[idx[3]], line: line}
		var errs [4]error
		s.ID, errs[0] = strconv.Atoi(f[idx[1]])
		s.Admin, errs[1] = strconv.Atoi(f[idx[4]])
		s.UWeight, errs[2] = strconv.Atoi(f[idx[5]])
		s.Port, errs[3] = strconv.Atoi(f[idx[6]])
		if errors.Join(errs[:]...) != nil {
			return nil, bad()
		}
		servers = append(servers, s)
	}
	return servers, nil
}

// appendFields appends the fields of line to f, split as strings.Fields
// splits them, without a new slice per line.
func appendFields(f []string, line string) []string {
	for i := 0; i < len(line); i++ {
		if line[i] >= utf8.RuneSelf {
			return append(f, strings.Fields(line)...) // Unicode spaces too
		}
	}
	start := -1
	for i := 0; i < len(line); i++ {
		switch line[i] {
		case ' ', '\t', '\n', '\v', '\f', '\r':
			if start >= 0 {
				f, start = append(f, line[start:i]), -1
			}
		default:
			if start < 0 {
				start = i
			}
		}
	}
	if start >= 0 {
		f = append(f, line[start:])
	}
	return f
}

// serversState returns the servers HAProxy runs in backend, or in every
// backend when backend is "".
func (c Client) serversState(ctx context.Context, backend string) ([]liveServer, error) {
	cmd := strings.TrimSpace("show servers state " + backend)
	reply, err := c.Command(ctx, cmd)
	if err != nil {
		return nil, err
	}
	servers, err := parseServersState(reply)
	if err != nil {
		return nil, fmt.Errorf("haproxy %s: %s: %w", c.Addr, cmd, err)
	}
	return servers, nil
}

// ErrMismatch is HAProxy running other servers than a file defines.
var ErrMismatch = errors.New("servers differ")

// Verify checks that the named backends run exactly the servers cfg
// defines: same names, addresses, ports and weights. A live server that
// the file lacks is allowed only while it is draining or in maintenance
// (a deletion Apply left pending); Verify returns those as
// "backend/server". An address that is not an IP literal in the file is
// not compared (HAProxy shows what the name resolved to). Any other
// difference is an error listing them all.
//
// A backend whose only differences are addresses is read again, after
// 1, 2, 4 ... ms, while the whole Verify has waited less than
// settleBudget: HAProxy 3.0 answers `set server addr` before it applies
// it (a task does, once every thread is idle), so a read right after the
// command can still show the old address. Any other difference is final
// at the first read.
//
// With Readings (ReadAhead) of the backends made after the caller's last
// change to them, their first reads are the Readings' (nil: none).
func (c Client) Verify(ctx context.Context, cfg []byte, backends []string, ahead ...*Reading) (pending []string, err error) {
	conf := Parse(cfg)
	var diffs []string
	var waited time.Duration
	first := map[string][]liveServer{} // the Readings' backends, each used once
	for _, rd := range ahead {
		if rd == nil {
			continue
		}
		if err := rd.wait(); err != nil {
			return nil, err
		}
		maps.Copy(first, rd.state)
	}
	for _, b := range backends {
		sec := conf.Section(b)
		if sec == nil {
			diffs = append(diffs, fmt.Sprintf("backend %s: not in the file", b))
			continue
		}
		var d, p []string
		for wait := settleStep; ; wait *= 2 {
			live, read := first[b]
			delete(first, b)
			if !read {
				if live, err = c.serversState(ctx, b); err != nil {
					return pending, err
				}
			}
			var late bool
			d, p, late = compare(b, sec, live)
			if !late || waited+wait > settleBudget || sleep(ctx, wait) != nil {
				break
			}
			waited += wait
		}
		diffs, pending = append(diffs, d...), append(pending, p...)
	}
	if len(diffs) > 0 {
		return pending, fmt.Errorf("verify haproxy %s against the file: %w: %s", c.Addr, ErrMismatch, strings.Join(diffs, "; "))
	}
	return pending, nil
}

// Reading is the live servers of some backends, read in a goroutine
// (ReadAhead) while the caller does other work.
type Reading struct {
	done   chan struct{} // closed once state and err are set
	state  map[string][]liveServer
	err    error
	cancel context.CancelFunc
}

// ReadAhead starts reading the live servers of the named backends, which
// the caller has made its last change to, for a later Verify: HAProxy's
// answer (15-20 ms for a backend of 10,000 servers) then overlaps the
// caller's other work. The Reading ends at deadline, with ctx, or when
// stopped.
func (c Client) ReadAhead(ctx context.Context, deadline time.Time, backends []string) *Reading {
	ctx, cancel := context.WithDeadline(ctx, deadline)
	rd := &Reading{done: make(chan struct{}), state: map[string][]liveServer{}, cancel: cancel}
	go func() {
		defer close(rd.done)
		for _, b := range backends {
			live, err := c.serversState(ctx, b)
			if err != nil {
				rd.err = err
				return
			}
			rd.state[b] = live
		}
	}()
	return rd
}

// wait waits for the reading to end and returns its error.
func (rd *Reading) wait() error {
	<-rd.done
	return rd.err
}

// Stop ends the reading, if it is still going, and waits for it (nil: no
// reading).
func (rd *Reading) Stop() {
	if rd != nil {
		rd.cancel()
		<-rd.done
	}
}

// Verify's re-reads of a backend whose addresses differ: the first after
// settleStep, each next after twice the wait before, none once the waits
// of one Verify would pass settleBudget (1 + 2 + ... + 64 ms: at most 8
// reads of one backend).
const (
	settleStep   = time.Millisecond
	settleBudget = 127 * time.Millisecond
)

// compare lists how backend b's live servers differ from the file's
// section sec, and the live servers the file lacks that are pending
// deletion; late reports differences that are all addresses, which a
// `set server addr` not yet applied explains.
func compare(b string, sec *Section, live []liveServer) (diffs, pending []string, late bool) {
	var moved, other bool
	// Indexes into live, and which the file has: a map of 10,000
	// liveServers would copy ~2 MB.
	byName := make(map[string]int32, len(live))
	for i := range live {
		byName[live[i].Name] = int32(i)
	}
	inFile := make([]bool, len(live))
	for _, s := range sec.Servers {
		i, ok := byName[s.Name]
		if !ok || inFile[i] {
			diffs, other = append(diffs, fmt.Sprintf("%s/%s: in the file (line %d), not running", b, s.Name, s.Line)), true
			continue
		}
		inFile[i] = true
		l := &live[i]
		if !l.runsAt(s) {
			diffs = append(diffs, fmt.Sprintf("%s/%s: running at %s port %d, the file (line %d) says %s", b, s.Name, l.Addr, l.Port, s.Line, s.Address))
			moved = true
		}
		if l.UWeight != s.Weight {
			diffs, other = append(diffs, fmt.Sprintf("%s/%s: running with weight %d, the file (line %d) says %d", b, s.Name, l.UWeight, s.Line, s.Weight)), true
		}
	}
	for i := range live {
		l := &live[i]
		if inFile[i] {
			continue
		}
		if l.pendingDeletion() {
			pending = append(pending, l.String())
			continue
		}
		diffs, other = append(diffs, fmt.Sprintf("%s: running in rotation, not in the file", l)), true
	}
	return diffs, pending, moved && !other
}

// sleep waits d or until ctx is done, whichever comes first.
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

// DumpState writes `show servers state` to path, replacing it atomically
// (a temporary file in the same directory, fsynced, renamed over path):
// HAProxy reads it at its next start when the file has `server-state-file
// PATH` and `load-server-state-from-file global`, so that servers keep
// their health and maintenance states across a reload. A reply that is not
// a valid dump leaves path as it was.
//
// A state line wins over the file HAProxy loads, so DumpState keeps only
// the lines of servers that cfg, the file about to be loaded, defines as
// they run (same address and port when the file gives an IP, same weight),
// and that prev, the file installed before cfg, defines too (prev nil: no
// such condition). Otherwise a weight or address set by hand would outlive
// the reload meant to restore the file's, and a server that a killed or
// refused live change left in maintenance half-way through its `add
// server` would stay out of rotation. Those servers start as cfg says.
func (c Client) DumpState(ctx context.Context, path string, cfg, prev []byte) error {
	reply, err := c.Command(ctx, "show servers state")
	if err != nil {
		return err
	}
	live, err := parseServersState(reply)
	if err != nil {
		return fmt.Errorf("haproxy %s: show servers state: %w", c.Addr, err)
	}
	next, before := serversOf(Parse(cfg)), map[string]Server(nil)
	if prev != nil {
		before = serversOf(Parse(prev))
	}
	version, header, _ := strings.Cut(reply, "\n")
	header, _, _ = strings.Cut(header, "\n")
	b := []byte(version + "\n" + header + "\n")
	for _, l := range live {
		if keepState(l, next, before) {
			b = append(append(b, l.line...), '\n')
		}
	}
	if err := renameio.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("dump server state: %w", err)
	}
	return nil
}

// keepState reports whether server l's state may be loaded with the next
// file: that file defines l as it runs, and the previous one (nil: any)
// had l.
func keepState(l liveServer, next, prev map[string]Server) bool {
	s, ok := next[l.String()]
	if !ok || l.UWeight != s.Weight {
		return false
	}
	if !l.runsAt(s) {
		return false
	}
	_, had := prev[l.String()]
	return prev == nil || had
}

// serversOf indexes the servers of a file's backend and listen sections
// as "backend/server".
func serversOf(c *Config) map[string]Server {
	m := map[string]Server{}
	for _, sec := range c.Sections {
		for _, s := range sec.Servers {
			m[sec.Name+"/"+s.Name] = s
		}
	}
	return m
}
