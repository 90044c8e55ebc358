package harness

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// showProc26 is HAProxy 2.6.12's show proc after one reload, captured,
// with an old worker still finishing added as 2.6 lists it.
const showProc26 = "#<PID>          <type>          <reloads>       <uptime>        <version>      \n" +
	"9849            master          1 [failed: 0]   0d00h00m03s     2.6.12-1+deb12u4\n" +
	"# workers\n" +
	"10266           worker          0               0d00h00m02s     2.6.12-1+deb12u4\n" +
	"9850            worker          1               0d00h00m03s     2.6.12-1+deb12u4\n" +
	"# programs\n\n"

// TestShowProc reads a master CLI that, like 2.6's, keeps the connection
// open after answering.
func TestShowProc(t *testing.T) {
	dir, err := os.MkdirTemp("", "sp")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "m.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		buf := make([]byte, 64)
		conn.Read(buf)
		conn.Write([]byte(showProc26))
		conn.Read(buf) // held open until the client closes
	}()
	p, err := ShowProc(sock)
	if err != nil {
		t.Fatal(err)
	}
	if p.MasterPID != 9849 || p.Reloads != 1 || p.Failed != 0 || !slices.Equal(p.Workers, []int{10266, 9850}) || p.Current != 10266 {
		t.Fatalf("got %+v, want master 9849, reloads 1, failed 0, workers [10266 9850], current 10266", p)
	}
}

func TestParseLogfmt(t *testing.T) {
	got := ParseLogfmt(`time=2026-12-07T02:13:27.401Z level=INFO msg=member-leave removed=web01,web02 live="draining 1 (nodes/web01)" took=12.5ms`)
	want := map[string]string{"time": "2026-12-07T02:13:27.401Z", "level": "INFO", "msg": "member-leave",
		"removed": "web01,web02", "live": "draining 1 (nodes/web01)", "took": "12.5ms"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}
