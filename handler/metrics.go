package handler

// Metrics for node_exporter's textfile collector: serf-hb lives for a
// fraction of a second per event, so it cannot be scraped; instead each
// run rewrites one file in Prometheus' text format, atomically, and
// node_exporter serves it. Gauges describe the last run; counters are
// carried over from the file the previous run wrote.

import (
	"bufio"
	"bytes"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/rogpeppe/go-internal/lockedfile"
	"github.com/serf-hb/serf-hb/render"
)

// failureKind names the kind of a failed run for serf_hb_failures_total.
func failureKind(code int) string {
	switch code {
	case ExitUsage:
		return "usage"
	case ExitRejected:
		return "rejected"
	case ExitTemplate:
		return "template"
	case ExitCheck:
		return "check"
	case ExitReload:
		return "reload"
	case ExitGuarded:
		return "guarded"
	}
	return "other"
}

// writeMetrics rewrites the metrics file with this run's report. Runs are
// serialized on a lock file next to it, so that no counter increment is
// lost to a concurrent run (a render by hand during an event).
func writeMetrics(path string, rep *report, end float64) error {
	unlock, err := (&lockedfile.Mutex{Path: path + ".lock"}).Lock()
	if err != nil {
		return fmt.Errorf("lock metrics file %s: %v", path, err)
	}
	defer unlock()
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("read metrics file %s: %v", path, err)
	}
	counters := parseMetrics(old)
	_, code := rep.status()
	result := rep.Result
	if result == "" {
		result = "none"
	}
	counters[`serf_hb_runs_total{result="`+result+`"}`]++
	if rep.Result == resReloaded {
		counters["serf_hb_reloads_total"]++
	}
	if code != ExitOK {
		counters[`serf_hb_failures_total{kind="`+failureKind(code)+`"}`]++
	}
	nodes := float64(rep.Nodes)
	if rep.Nodes < 0 {
		nodes = counters["serf_hb_nodes"] // not listed this run: the last known count
	}
	delete(counters, "serf_hb_nodes")

	var b bytes.Buffer
	gauge := func(name, help string, v float64) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s gauge\n%s %s\n", name, help, name, name, strconv.FormatFloat(v, 'g', -1, 64))
	}
	gauge("serf_hb_last_run_timestamp_seconds", "Unix time the last serf-hb run ended.", end)
	gauge("serf_hb_last_run_duration_seconds", "How long the last serf-hb run took.", rep.Took.Seconds())
	gauge("serf_hb_last_run_exit_code", "Exit status of the last serf-hb run (0 is success).", float64(code))
	success := 0.0
	if code == ExitOK {
		success = 1
	}
	gauge("serf_hb_last_run_success", "1 if the last serf-hb run succeeded, else 0.", success)
	gauge("serf_hb_nodes", "Nodes in the registry when last rendered.", nodes)
	for _, c := range []struct{ name, help string }{
		{"serf_hb_runs_total", "serf-hb runs, by result."},
		{"serf_hb_reloads_total", "Reloads serf-hb made."},
		{"serf_hb_failures_total", "Failed serf-hb runs, by kind (usage, rejected, template, check, reload, guarded, other)."},
	} {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s counter\n", c.name, c.help, c.name)
		for _, k := range slices.Sorted(maps.Keys(counters)) {
			if k == c.name || strings.HasPrefix(k, c.name+"{") {
				fmt.Fprintf(&b, "%s %s\n", k, strconv.FormatFloat(counters[k], 'f', -1, 64))
			}
		}
	}
	return render.WriteFile(path, b.Bytes())
}

// parseMetrics reads the samples of a metrics file serf-hb wrote: series
// (name with labels) to value. Lines it cannot read are dropped: the file
// is serf-hb's own, and a damaged one only resets the counters.
func parseMetrics(b []byte) map[string]float64 {
	m := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i <= 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		m[line[:i]] = v
	}
	return m
}
