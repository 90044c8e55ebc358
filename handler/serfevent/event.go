// Package serfevent reads what Serf hands an event handler: one line per
// member on stdin, "NAME\tADDR\tROLE\tTAGS", with tabs and newlines in
// values escaped as Serf escapes them (serf-contract.md). Its invariant:
// every line is read to the end of the input, within fixed bounds on line
// length and total size, so that Serf's write never fails and hostile
// input cannot grow the handler's memory; a bad line is named and
// skipped, never fatal.
package serfevent

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"unicode/utf8"

	"github.com/serf-hb/serf-hb/nodestore"
)

// Input limits. Serf's own limits are far below them (a member's tags must
// fit in 512 bytes), so input beyond them is not Serf's and is refused
// instead of being held in memory.
const (
	// MaxLineBytes is the longest stdin line accepted.
	MaxLineBytes = 64 << 10
	// MaxInputBytes is how much stdin is parsed; the rest is read and
	// discarded, and the run fails. Parsed lines take up to ~17 times
	// their size in memory (tiny lines, or lines dense with tags), so this
	// bound is what caps the run's memory (scripts/reliability measures
	// the peak, docs/reliability.md has the figures) and still holds the full
	// membership of a 10,000-node cluster whose tags fill Serf's 512 bytes.
	MaxInputBytes = 8 << 20
)

// InputLimitError is stdin over MaxInputBytes: the lines before the limit
// were read and are returned, the rest was discarded. A run publishes what
// it read, like any other rejected input (exit 3), and names the limit: a
// cluster that outgrew it is still served as far as it was read.
type InputLimitError struct {
	Read      int   // lines read, all before the limit
	Discarded int64 // bytes discarded after it
}

func (e *InputLimitError) Error() string {
	return fmt.Sprintf("stdin is larger than %d bytes: lines after %d were not read (%d more bytes discarded); the lines read were applied", MaxInputBytes, e.Read, e.Discarded)
}

// Member is one stdin line of a Serf member event.
type Member struct {
	Line int // 1-based stdin line number, set by ReadMembers
	Name string
	Addr netip.Addr
	Role string
	Tags map[string]string
	// BadAddr is the ADDR field when it is not an IP address (Addr is
	// then zero): a join or update of such a member is rejected, while
	// its removal, which needs only the name, goes ahead.
	BadAddr string
}

// LineError is a stdin line that could not be used.
type LineError struct {
	Line int    // 1-based
	Name string // the node's name, when the line got that far
	Err  error
}

func (e *LineError) Error() string {
	if e.Name != "" {
		return fmt.Sprintf("line %d: node %q: %v", e.Line, e.Name, e.Err)
	}
	return fmt.Sprintf("line %d: %v", e.Line, e.Err)
}

// ParseLine parses one member line, NAME\tADDR\tROLE\tTAGS, without its
// line ending. Serf escapes TAB and LF inside NAME, ROLE and TAGS as the two
// characters \t and \n (and nothing else, not even the backslash), so the
// line always has exactly four fields. An ADDR that is not an IP address
// is no error here: it is kept in BadAddr, for the decision to refuse.
func ParseLine(line string) (Member, error) {
	if !utf8.ValidString(line) {
		return Member{}, errors.New("not valid UTF-8")
	}
	if strings.IndexByte(line, 0) >= 0 {
		return Member{}, errors.New("contains a NUL byte")
	}
	f := strings.Split(line, "\t")
	if len(f) != 4 {
		return Member{}, fmt.Errorf("has %d tab-separated fields, want 4 (NAME ADDR ROLE TAGS)", len(f))
	}
	m := Member{Name: unescape(f[0]), Role: unescape(f[2])}
	if m.Name == "" {
		return Member{}, errors.New("empty node name")
	}
	if addr, err := netip.ParseAddr(f[1]); err == nil && addr.Zone() == "" {
		m.Addr = addr.Unmap()
	} else {
		m.BadAddr = f[1]
	}
	m.Tags = parseTags(unescape(f[3]))
	return m, nil
}

var unescaper = strings.NewReplacer(`\t`, "\t", `\n`, "\n")

func unescape(s string) string {
	if strings.IndexByte(s, '\\') < 0 {
		return s
	}
	return unescaper.Replace(s)
}

// parseTags splits Serf's "k=v,k=v" tag list. Serf does not escape "," or
// "=" inside keys or values, so the list is ambiguous; a piece without "="
// is taken as the continuation of the previous value ("note=a,b" ->
// note="a,b"), which is right whenever keys themselves hold no ",".
func parseTags(s string) map[string]string {
	if s == "" {
		return map[string]string{}
	}
	// Sized up front: a start-up batch parses every member's tags, and a
	// map grown by doubling made twice its size in garbage.
	tags := make(map[string]string, strings.Count(s, ",")+1)
	last := ""
	for kv := range strings.SplitSeq(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok && last != "" {
			tags[last] += "," + kv
			continue
		}
		tags[k] = v
		last = k
	}
	return tags
}

// ReadMembers reads member lines from r until EOF and returns the ones that
// parse, and an error for each one that does not. It always reads r to the
// end, so the writer (Serf) never blocks or sees a broken pipe. A final line
// without a newline counts; a CR before the LF is dropped; blank lines are
// skipped.
func ReadMembers(r io.Reader) ([]Member, []*LineError, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var (
		members []Member
		bad     []*LineError
		total   int64
		lineNo  int
		buf     []byte
		tooLong bool
		name    string // of a line too long to keep
	)
	for {
		chunk, err := br.ReadSlice('\n')
		total += int64(len(chunk))
		if total > MaxInputBytes {
			n, _ := io.Copy(io.Discard, br)
			return members, bad, &InputLimitError{Read: lineNo, Discarded: n}
		}
		if !tooLong && len(buf)+len(chunk) <= MaxLineBytes+2 { // +2: room for CR LF
			buf = append(buf, chunk...)
		} else if !tooLong {
			// The name is the line's first field: keep it for the error.
			name = lineName(append(buf, chunk...))
			tooLong, buf = true, buf[:0]
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if len(buf) > 0 || tooLong {
			lineNo++
			line := strings.TrimSuffix(strings.TrimSuffix(string(buf), "\n"), "\r")
			switch {
			case tooLong:
				bad = append(bad, &LineError{Line: lineNo, Name: name, Err: fmt.Errorf("longer than %d bytes", MaxLineBytes)})
			case strings.TrimSpace(line) == "":
			default:
				m, perr := ParseLine(line)
				if perr != nil {
					bad = append(bad, &LineError{Line: lineNo, Name: m.Name, Err: perr})
				} else {
					m.Line = lineNo
					members = append(members, m)
				}
			}
			buf, tooLong, name = buf[:0], false, ""
		}
		if err == io.EOF {
			return members, bad, nil
		}
		if err != nil {
			return members, bad, fmt.Errorf("read stdin: %v", err)
		}
	}
}

// lineName returns the unescaped NAME field at the start of a member line
// that is too long to parse, when it is short enough to name in a log
// line; "" otherwise.
func lineName(b []byte) string {
	i := bytes.IndexByte(b, '\t')
	if i <= 0 || i > nodestore.MaxNameLen*2 || !utf8.Valid(b[:i]) {
		return ""
	}
	return unescape(string(b[:i]))
}
