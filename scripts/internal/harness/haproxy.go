package harness

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// HAProxyPIDs lists the live HAProxy processes running cfg: the master,
// its workers, old workers still finishing, orphans of a run script.
func HAProxyPIDs(cfg string) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		argv := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if filepath.Base(argv[0]) != "haproxy" || !slices.Contains(argv, cfg) {
			continue
		}
		// A zombie keeps its command line until reaped: count live ones.
		if st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil {
			if f := strings.Fields(string(st[bytes.LastIndexByte(st, ')')+1:])); len(f) > 0 && f[0] == "Z" {
				continue
			}
		}
		pids = append(pids, pid)
	}
	sort.Ints(pids)
	return pids
}

// HAProxyCommand sends one command to HAProxy's runtime API (a stats
// socket at level admin) and returns the whole answer. An answer that is
// neither a table ("#...") nor a "1\n"-prefixed one is an error.
func HAProxyCommand(sock, cmd string) (string, error) {
	conn, err := net.DialTimeout("unix", sock, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(conn, cmd+"\n"); err != nil {
		return "", err
	}
	b, err := io.ReadAll(conn)
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(string(b), "1\n") && !strings.HasPrefix(string(b), "#") {
		return "", fmt.Errorf("%s: unexpected answer %q", cmd, b)
	}
	return string(b), nil
}

// MasterProcs is the master CLI's show proc, read independently of
// serf-hb's own reader (handler/master).
type MasterProcs struct {
	MasterPID int
	Reloads   int   // the master's reload counter
	Failed    int   // failed reloads ("[failed: N]"), 0 when absent
	Workers   []int // current and old workers' PIDs, as listed
	Current   int   // the current worker's PID (the first under "# workers"); 0 when none
}

// ShowProc asks HAProxy's master CLI (haproxy -W -S PATH) for show proc.
// The 2.6 master keeps the connection open after answering, so the answer
// ends at a short silence.
func ShowProc(masterSock string) (MasterProcs, error) {
	var p MasterProcs
	conn, err := net.DialTimeout("unix", masterSock, 2*time.Second)
	if err != nil {
		return p, err
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "show proc\n"); err != nil {
		return p, err
	}
	var out []byte
	buf := make([]byte, 4096)
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		idle := 200 * time.Millisecond
		if len(out) == 0 {
			idle = 2 * time.Second
		}
		conn.SetReadDeadline(time.Now().Add(idle))
		n, err := conn.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			break
		}
	}
	master := false
	section := ""
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 0:
		case f[0] == "#":
			if len(f) > 1 {
				section = f[1]
			}
		case strings.HasPrefix(f[0], "#"):
			// the header: #<PID> <type> <reloads> ...
		case len(f) >= 3 && f[1] == "master":
			master = true
			p.MasterPID, _ = strconv.Atoi(f[0])
			p.Reloads, _ = strconv.Atoi(f[2])
			if i := strings.Index(line, "[failed: "); i >= 0 {
				fmt.Sscanf(line[i:], "[failed: %d]", &p.Failed)
			}
		case len(f) >= 2 && f[1] == "worker" && section != "programs":
			pid, err := strconv.Atoi(f[0])
			if err == nil {
				p.Workers = append(p.Workers, pid)
				if section == "workers" && p.Current == 0 {
					p.Current = pid
				}
			}
		}
	}
	if !master {
		return p, fmt.Errorf("show proc on %s: no master line in %q", masterSock, out)
	}
	return p, nil
}
