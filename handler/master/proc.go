package master

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Procs is the master CLI's `show proc`: the master and its workers.
type Procs struct {
	Master Proc
	// Failed counts the master's failed reloads since its last successful
	// one (HAProxy resets it on success).
	Failed int
	// Workers are the current workers, serving the loaded configuration
	// (one since HAProxy 2.5).
	Workers []Proc
	// OldWorkers still finish the connections of an older configuration.
	OldWorkers []Proc
}

// Proc is one process in `show proc`.
type Proc struct {
	PID     int
	Reloads int // reloads this process has lived through; 0 for a new worker
	Uptime  time.Duration
	Version string
}

// Current returns the current worker, false if there is none (HAProxy
// starting, or its worker just died).
func (p Procs) Current() (Proc, bool) {
	if len(p.Workers) == 0 {
		return Proc{}, false
	}
	return p.Workers[0], true
}

// ShowProc asks the master for its processes.
func (c *Client) ShowProc(ctx context.Context) (Procs, error) {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	return c.showProc(ctx)
}

func (c *Client) showProc(ctx context.Context) (Procs, error) {
	const cmd = "show proc"
	answer, err := c.exchange(ctx, cmd, true)
	if err != nil {
		return Procs{}, err
	}
	if len(answer) == 0 {
		return Procs{}, c.socketError(cmd, errEmpty)
	}
	p, err := parseProcs(string(answer))
	if err != nil {
		return Procs{}, c.socketError(cmd, err)
	}
	return p, nil
}

// parseProcs parses the answer to `show proc` of HAProxy 2.5 and later:
//
//	#<PID>          <type>          <reloads>       <uptime>        <version>
//	1162            master          5 [failed: 0]   0d00h02m07s     2.6.12
//	# workers
//	1271            worker          1               0d00h00m00s     2.6.12
//	# old workers
//	1233            worker          3               0d00h00m43s     2.6.12
//	# programs
//	1244            foo             0               0d00h00m00s     -
//
// `show proc debug` appends tab-separated columns, which are ignored, and
// so are programs. Older versions print no failed count, without which a
// failed reload cannot be told from a slow one: they are refused.
func parseProcs(s string) (Procs, error) {
	var p Procs
	section := "master"
	sawHeader, sawMaster := false, false
	for i, line := range strings.Split(s, "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		if !sawHeader {
			if !strings.HasPrefix(line, "#<PID>") {
				return Procs{}, answerError(s, "not the answer to show proc")
			}
			sawHeader = true
			continue
		}
		if strings.HasPrefix(line, "#") {
			section = strings.TrimSpace(strings.TrimPrefix(line, "#"))
			continue
		}
		f := strings.Fields(line)
		switch {
		case !sawMaster:
			if err := parseMaster(f, &p); err != nil {
				return Procs{}, answerError(s, fmt.Sprintf("line %d: %v", i+1, err))
			}
			sawMaster = true
		case section == "workers" || section == "old workers":
			w, err := parseWorker(f)
			if err != nil {
				return Procs{}, answerError(s, fmt.Sprintf("line %d: %v", i+1, err))
			}
			if section == "workers" {
				p.Workers = append(p.Workers, w)
			} else {
				p.OldWorkers = append(p.OldWorkers, w)
			}
		}
	}
	if !sawMaster {
		return Procs{}, answerError(s, "no master line")
	}
	return p, nil
}

// parseMaster parses `PID master RELOADS [failed: N] UPTIME VERSION`.
func parseMaster(f []string, p *Procs) error {
	if len(f) < 2 || f[1] != "master" {
		return fmt.Errorf("want PID master RELOADS [failed: N] UPTIME VERSION")
	}
	if len(f) < 7 || f[3] != "[failed:" || !strings.HasSuffix(f[4], "]") {
		return fmt.Errorf("no [failed: N] count: haproxy older than 2.5? a failed reload cannot be told without it")
	}
	var err error
	p.Master, err = parseProc(f[0], f[2], f[5], f[6])
	if err != nil {
		return err
	}
	p.Failed, err = count(strings.TrimSuffix(f[4], "]"))
	return err
}

// parseWorker parses `PID worker RELOADS UPTIME VERSION`.
func parseWorker(f []string) (Proc, error) {
	if len(f) < 5 || f[1] != "worker" {
		return Proc{}, fmt.Errorf("want PID worker RELOADS UPTIME VERSION")
	}
	return parseProc(f[0], f[2], f[3], f[4])
}

func parseProc(pid, reloads, uptime, version string) (Proc, error) {
	var p Proc
	var err error
	if p.PID, err = count(pid); err != nil || p.PID == 0 {
		return Proc{}, fmt.Errorf("PID %q", pid)
	}
	if p.Reloads, err = count(reloads); err != nil {
		return Proc{}, err
	}
	if p.Uptime, err = parseUptime(uptime); err != nil {
		return Proc{}, err
	}
	p.Version = version
	return p, nil
}

// count parses a non-negative decimal that fits an int32, as HAProxy
// prints them.
func count(s string) (int, error) {
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("count %q", s)
	}
	return int(n), nil
}

// parseUptime parses HAProxy's "%dd%02dh%02dm%02ds".
func parseUptime(s string) (time.Duration, error) {
	var total time.Duration
	rest := s
	for _, unit := range []struct {
		suffix byte
		d      time.Duration
	}{{'d', 24 * time.Hour}, {'h', time.Hour}, {'m', time.Minute}, {'s', time.Second}} {
		i := strings.IndexByte(rest, unit.suffix)
		if i <= 0 {
			return 0, fmt.Errorf("uptime %q", s)
		}
		n, err := count(rest[:i])
		// The sum must fit a Duration (~292 years): a bound per unit
		// alone (it was a million days) still overflows.
		if err != nil || time.Duration(n) > (math.MaxInt64-total)/unit.d {
			return 0, fmt.Errorf("uptime %q", s)
		}
		total += time.Duration(n) * unit.d
		rest = rest[i+1:]
	}
	if rest != "" {
		return 0, fmt.Errorf("uptime %q", s)
	}
	return total, nil
}

// answerError says what was wrong with an answer and shows its start: a
// stats socket given for the master CLI answers "Unknown command".
func answerError(answer, what string) error {
	first, _, _ := strings.Cut(strings.TrimSpace(answer), "\n")
	if len(first) > 120 {
		first = first[:120] + "..."
	}
	return fmt.Errorf("%w: %s (it begins %q)", errBadAnswer, what, first)
}

// errBadAnswer is an answer that is not what the master CLI gives.
var errBadAnswer = errors.New("unexpected answer")
