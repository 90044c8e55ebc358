package serfevent

import (
	"bytes"
	"errors"
	"io"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseLine(t *testing.T) {
	tests := []struct {
		line string
		want Member
	}{
		{"web1\t127.0.0.11\tbackend\trole=backend,port=3000",
			Member{Name: "web1", Addr: netip.MustParseAddr("127.0.0.11"), Role: "backend", Tags: map[string]string{"role": "backend", "port": "3000"}}},
		{"notags\t127.0.0.17\t\t",
			Member{Name: "notags", Addr: netip.MustParseAddr("127.0.0.17"), Tags: map[string]string{}}},
		{"v6\t::1\tbackend\trole=backend",
			Member{Name: "v6", Addr: netip.MustParseAddr("::1"), Role: "backend", Tags: map[string]string{"role": "backend"}}},
		// Serf escapes TAB and LF inside fields as \t and \n.
		{`tab\there` + "\t10.0.0.1\t" + `back\nend` + "\t" + `note=a\tb`,
			Member{Name: "tab\there", Addr: netip.MustParseAddr("10.0.0.1"), Role: "back\nend", Tags: map[string]string{"note": "a\tb"}}},
		// Commas in values are not escaped: a piece without "=" continues the value.
		{"w\t10.0.0.1\tbackend\tnote=a,b,role=backend",
			Member{Name: "w", Addr: netip.MustParseAddr("10.0.0.1"), Role: "backend", Tags: map[string]string{"note": "a,b", "role": "backend"}}},
		{"w\t::ffff:10.0.0.1\tbackend\t",
			Member{Name: "w", Addr: netip.MustParseAddr("10.0.0.1"), Role: "backend", Tags: map[string]string{}}},
	}
	for _, tt := range tests {
		got, err := ParseLine(tt.line)
		if err != nil {
			t.Errorf("ParseLine(%q): %v", tt.line, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseLine(%q) = %+v, want %+v", tt.line, got, tt.want)
		}
	}
}

// TestParseLineBadAddr: an address that is not an IP address is kept for
// the decision (a removal needs only the name), not an error.
func TestParseLineBadAddr(t *testing.T) {
	for _, addr := range []string{"not-an-ip", "999.1.1.1", "", "fe80::1%eth0", "10.0.0.1:3000", "web8.example.com"} {
		m, err := ParseLine("web1\t" + addr + "\tbackend\t")
		if err != nil || m.Name != "web1" || m.Addr.IsValid() || m.BadAddr != addr {
			t.Errorf("ParseLine with address %q = %+v, %v; want name web1, BadAddr %q", addr, m, err, addr)
		}
	}
}

func TestParseLineRejects(t *testing.T) {
	for line, want := range map[string]string{
		"web1 10.0.0.1 backend":             "fields",
		"web1\t10.0.0.1\tbackend":           "fields",
		"web1\t10.0.0.1\tbackend\tx\textra": "fields",
		"\t10.0.0.1\tbackend\t":             "empty node name",
		"we\xffb\t10.0.0.1\tbackend\t":      "UTF-8",
		"web\x001\t10.0.0.1\tbackend\t":     "NUL",
	} {
		_, err := ParseLine(line)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseLine(%q) = %v, want an error about %q", line, err, want)
		}
	}
}

func TestReadMembers(t *testing.T) {
	in := "a\t10.0.0.1\tbackend\t\r\n" + // CRLF
		"\n" + // blank: skipped, still counted
		"garbage\n" +
		"b\t10.0.0.2\tbackend\t" // no final newline
	members, bad, err := ReadMembers(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(members) != 2 || members[0].Name != "a" || members[1].Name != "b" {
		t.Fatalf("members = %+v", members)
	}
	if members[0].Line != 1 || members[1].Line != 4 {
		t.Errorf("line numbers = %d, %d; want 1, 4", members[0].Line, members[1].Line)
	}
	if len(bad) != 1 || bad[0].Line != 3 {
		t.Fatalf("bad = %v, want line 3 only", bad)
	}
}

func TestReadMembersLongLine(t *testing.T) {
	long := strings.Repeat("x", MaxLineBytes+10)
	in := "a\t10.0.0.1\tbackend\t\n" + long + "\t10.0.0.9\tbackend\t\n" + "b\t10.0.0.2\tbackend\t\n"
	members, bad, err := ReadMembers(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(members) != 2 || members[1].Name != "b" || members[1].Line != 3 {
		t.Fatalf("members = %+v; want a and b (line 3) around the long line", members)
	}
	if len(bad) != 1 || bad[0].Line != 2 || !strings.Contains(bad[0].Error(), "longer than") {
		t.Fatalf("bad = %v; want line 2 too long", bad)
	}
}

// countingReader yields n bytes of valid member lines and counts what was
// read.
type countingReader struct {
	r    io.Reader
	read int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.read += int64(n)
	return n, err
}

func TestReadMembersInputLimitDrains(t *testing.T) {
	line := "web1\t10.0.0.1\tbackend\t\n"
	total := MaxInputBytes + 5<<20
	cr := &countingReader{r: io.LimitReader(&repeatReader{s: line}, int64(total))}
	_, _, err := ReadMembers(cr)
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("err = %v; want the input limit error", err)
	}
	if cr.read != int64(total) {
		t.Fatalf("read %d of %d bytes: stdin must be drained to the end", cr.read, total)
	}
}

type repeatReader struct {
	s   string
	off int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.s[r.off:])
		n += c
		r.off = (r.off + c) % len(r.s)
	}
	return n, nil
}

// escape is Serf's eventClean: TAB and LF become \t and \n, nothing else.
func escape(s string) string {
	return strings.NewReplacer("\t", `\t`, "\n", `\n`).Replace(s)
}

func FuzzParseLine(f *testing.F) {
	for _, seed := range []string{
		"web1\t127.0.0.11\tbackend\trole=backend,port=3000",
		"notags\t127.0.0.17\t\t",
		"v6\t::1\tbackend\trole=backend",
		`a\tb` + "\t10.0.0.1\t" + `r\n` + "\t" + `k=v\n,x=y`,
		"../evil\t1.2.3.4\tbackend\t",
		"w\t::ffff:1.2.3.4\tbackend\tnote=a,b=c,d",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, line string) {
		m, err := ParseLine(line)
		if err != nil {
			return
		}
		// An address is either an IP (Addr) or kept as it came (BadAddr),
		// never both, never lost.
		field := strings.Split(line, "\t")[1]
		if m.Name == "" || m.Addr.IsValid() && m.BadAddr != "" || !m.Addr.IsValid() && m.BadAddr != field {
			t.Fatalf("ParseLine(%q) accepted %+v", line, m)
		}
		if !m.Addr.IsValid() {
			return // the round trip needs an address
		}
		// Round trip: escaping the parsed fields the way Serf does gives
		// a line that parses to the same member. (Names with a backslash
		// are ambiguous on the wire and skipped.)
		if strings.Contains(line, `\`) || strings.Contains(m.Name+m.Role, "\\") {
			return
		}
		var tags []string
		for k, v := range m.Tags {
			tags = append(tags, k+"="+v)
		}
		if len(tags) > 1 {
			return // Serf's tag list is ambiguous once values hold commas
		}
		again := escape(m.Name) + "\t" + m.Addr.String() + "\t" + escape(m.Role) + "\t" + escape(strings.Join(tags, ","))
		m2, err := ParseLine(again)
		if err != nil {
			t.Fatalf("re-parse of %q (from %q): %v", again, line, err)
		}
		if m2.Name != m.Name || m2.Addr != m.Addr || m2.Role != m.Role || !reflect.DeepEqual(m2.Tags, m.Tags) {
			t.Fatalf("round trip of %q: %+v != %+v", line, m2, m)
		}
	})
}

func FuzzReadMembers(f *testing.F) {
	f.Add([]byte("a\t10.0.0.1\tbackend\t\r\nb\t::1\t\t\n\x00\xff\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		members, bad, err := ReadMembers(bytes.NewReader(in))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range members {
			if m.Line < 1 || !utf8.ValidString(m.Name) {
				t.Fatalf("bad member %+v", m)
			}
		}
		for _, b := range bad {
			var le *LineError
			if !errors.As(b, &le) || b.Line < 1 {
				t.Fatalf("bad line error %+v", b)
			}
		}
	})
}
