package handler

// Output rules, in one place:
//   - stdout carries only what a command was asked for: the rendered file of
//     render --dry-run, the diff, the node table or JSON of nodes, sync's
//     changes. The event handler prints nothing on stdout (for a Serf query
//     it would become the response).
//   - stderr gets the run's log lines (slog's text format, or JSON with
//     --log-format json): a WARN line for each rejected input and each
//     warning, then exactly one summary line per run, with the cause of a
//     failure as its last attribute, err=... . Serf keeps only the last
//     8 KiB of a handler's output and shows it only at DEBUG level, so lines
//     stay short.
//   - with --log-file, the same lines are appended to that file too. A log
//     file that cannot be opened is a warning on stderr, never a lost event.
//   - package main prints an error itself only when no report carried it
//     (usage errors, and the commands that print instead of logging).

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/serf-hb/serf-hb/nodestore"
)

// Results for the summary line.
const (
	resUnchanged    = "unchanged"
	resInstalled    = "installed"
	resReloaded     = "reloaded"
	resCheckFailed  = "check-failed"
	resReloadFailed = "reload-failed"
	resFailed       = "failed"
	resGuarded      = "guarded"
)

// report is what one run did: filled in by the run's steps, logged once by
// its entry point.
type report struct {
	Msg   string // the summary line's message: the event, or the command
	Event string
	Name  string // the user event's name
	RPC   string // the agent asked, for sync

	Lines    int // stdin lines of a member event; -1: not an event run
	Ignored  []string
	Members  int // members of the roles in the agent's list (sync); -1: not asked
	Rejected []rejection
	Bad      []error // registry entries that are not nodes
	Warnings []string

	Applied           bool // the registry step ran: Done is what it changed
	Done              changes
	Reconcile         string // "", ok, fixed, skipped, failed
	ReconcileDone     changes
	ReconcileWarn     string
	ReconcileRejected int

	Nodes     int // nodes rendered; -1 when the registry was not listed
	Published int // nodes the output holds when the guard held some; -1 otherwise
	MinNodes  int
	Held      []string // ROLE:NAMES the guard kept in the output (guard.go)
	InPlace   bool
	Verified  time.Duration // how long the master CLI took to confirm the reload
	Live      string        // what the runtime API did, or why a reload was needed instead
	Deleted   string        // servers earlier runs retired, now deleted
	Checked   string        // "fast" when the fast check stood in for --check, "full" when it ran on the installed file before a reload
	Result    string
	Err       error
	Took      time.Duration
}

func newReport(msg string) *report {
	return &report{Msg: msg, Event: msg, Lines: -1, Members: -1, Nodes: -1, Published: -1}
}

// rejectedCount is the number of rejected inputs of every kind.
func (r *report) rejectedCount() int { return len(r.Rejected) + len(r.Bad) }

// status returns the run's error and exit status: its failure, else its
// rejected input.
func (r *report) status() (error, int) {
	if r.Err != nil {
		return r.Err, ExitCode(r.Err)
	}
	var parts []string
	if n := len(r.Rejected); n > 0 {
		what := "input(s)"
		switch {
		case r.Members >= 0:
			what = "member(s)"
		case r.Lines >= 0:
			what = "line(s)"
		}
		parts = append(parts, fmt.Sprintf("%d %s rejected", n, what))
	}
	if n := len(r.Bad); n > 0 {
		parts = append(parts, fmt.Sprintf("%d registry entr(ies) skipped", n))
	}
	if len(parts) > 0 {
		return fmt.Errorf("%s; the others were applied", strings.Join(parts, ", ")), ExitRejected
	}
	return nil, ExitOK
}

// attrs returns the summary line's attributes, in a fixed order.
func (r *report) attrs() []any {
	a := []any{"event", r.Event}
	if r.Name != "" {
		a = append(a, "name", r.Name)
	}
	if r.RPC != "" {
		a = append(a, "rpc", r.RPC)
	}
	if r.Lines >= 0 {
		a = append(a, "lines", r.Lines, "ignored", len(r.Ignored))
	}
	if r.Members >= 0 {
		a = append(a, "members", r.Members)
	}
	if n := r.rejectedCount(); n > 0 {
		a = append(a, "rejected", n)
	}
	if r.Applied {
		a = appendChanges(a, "", r.Done)
	}
	if r.Reconcile != "" {
		a = append(a, "reconcile", r.Reconcile)
		if !r.ReconcileDone.empty() {
			a = appendChanges(a, "reconcile_", r.ReconcileDone)
		}
		if r.ReconcileWarn != "" {
			a = append(a, "warn", r.ReconcileWarn)
		}
		if r.ReconcileRejected > 0 {
			a = append(a, "reconcile_rejected", r.ReconcileRejected)
		}
	}
	if r.Nodes >= 0 {
		a = append(a, "nodes", r.Nodes)
	}
	if r.InPlace {
		a = append(a, "install", "in-place")
	}
	if r.Result != "" {
		a = append(a, "result", r.Result)
	}
	a = append(a, "took", r.Took.Round(time.Microsecond).String())
	// Attributes added after the first release go last, so that scripts
	// matching the older line keep working.
	if len(r.Ignored) > 0 {
		a = append(a, "ignored_nodes", names(r.Ignored))
	}
	if r.Live != "" {
		a = append(a, "live", r.Live)
	}
	if r.Deleted != "" {
		a = append(a, "deleted", r.Deleted)
	}
	if r.Checked != "" {
		a = append(a, "checked", r.Checked)
	}
	if r.Verified > 0 {
		a = append(a, "verified", r.Verified.Round(time.Microsecond).String())
	}
	if r.Published >= 0 {
		a = append(a, "published", r.Published, "min_nodes", r.MinNodes)
	}
	if len(r.Held) > 0 {
		a = append(a, "held", strings.Join(r.Held, ";"))
	}
	return a
}

func appendChanges(a []any, prefix string, d changes) []any {
	nodeNames := func(ns []nodestore.Node) string {
		list := make([]string, len(ns))
		for i, n := range ns {
			list[i] = n.Name
		}
		return names(list)
	}
	return append(a, prefix+"added", nodeNames(d.add), prefix+"updated", nodeNames(d.update), prefix+"removed", names(d.remove))
}

// log writes the report: a WARN line per rejected input and warning, then
// the summary line, at ERROR when the run failed or rejected input.
func (r *report) log(log *slog.Logger) {
	for _, b := range r.Rejected {
		a := []any{}
		if b.Line > 0 {
			a = append(a, "line", b.Line)
		}
		if b.Name != "" {
			a = append(a, "node", shorten(b.Name))
		}
		log.Warn("rejected", append(a, "err", b.Err.Error())...)
	}
	for _, b := range r.Bad {
		log.Warn("skipped", "err", b.Error())
	}
	for _, w := range r.Warnings {
		log.Warn("warning", "warn", w)
	}
	a := r.attrs()
	level := slog.LevelInfo
	if err, _ := r.status(); err != nil {
		level = slog.LevelError
		a = append(a, "err", err.Error())
	}
	log.Log(context.Background(), level, r.Msg, a...)
}

// newLogger returns a logger writing to stderr and, when logFile is set,
// appending to logFile. A log file that cannot be opened costs a warning
// on stderr, never the run: losing a membership change because logging
// failed would be the worse outcome.
func newLogger(stderr io.Writer, logFile, format, agent string) (*slog.Logger, func()) {
	w, closeFn := stderr, func() {}
	var openErr error
	if logFile != "" {
		f, err := os.OpenFile(logFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err == nil {
			w, closeFn = io.MultiWriter(stderr, f), func() { f.Close() }
		} else {
			openErr = err
		}
	}
	log := slog.New(slogHandler(w, format, agent))
	if openErr != nil {
		log.Warn("log file", "warn", fmt.Sprintf("open log file: %v; logging to stderr only", openErr))
	}
	return log, closeFn
}

// names formats a list of node names for a log line, eliding the middle
// of long lists.
func names(list []string) string {
	list = slices.Sorted(slices.Values(list))
	const max = 8
	for i := range list {
		list[i] = shorten(list[i])
	}
	if len(list) <= max {
		return strings.Join(list, ",")
	}
	return strings.Join(list[:max], ",") + fmt.Sprintf(",...(+%d)", len(list)-max)
}

// shorten cuts a node name for a log line: a hostile name can be 64 KiB,
// and Serf keeps only the last 8 KiB of a handler's output.
func shorten(name string) string {
	const max = 80
	if len(name) <= max {
		return name
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(name[cut]) {
		cut--
	}
	return fmt.Sprintf("%s...(%d bytes)", name[:cut], len(name))
}

// Early records an error that happened before a run could start (a bad
// flag, SERF_HB_* variable or config file value) where an operator looks:
// a line in the log file and a failed run (kind usage) in the metrics
// file. Serf shows a handler's own output only at DEBUG level, so without
// these every event would fail silently. The files are the ones the
// settings name, as far as they could be read; "" means none.
func Early(logFile, format, metricsFile string, err error) {
	ev := os.Getenv("SERF_EVENT")
	if logFile != "" {
		if f, ferr := os.OpenFile(logFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644); ferr == nil {
			slog.New(slogHandler(f, format, os.Getenv("SERF_SELF_NAME"))).Error("failed", "event", ev, "err", err.Error())
			f.Close()
		}
	}
	if metricsFile != "" {
		rep := newReport(ev)
		rep.Err = err
		now := time.Now()
		writeMetrics(metricsFile, rep, float64(now.UnixNano())/1e9) // best effort: stderr has the error
	}
}

// slogHandler writes log lines to w in format: "json", or slog's text.
// Every line ends with the agent (SERF_SELF_NAME, when set) and the
// process id, so that the lines of two agents sharing a log file, or of
// two runs interleaved, can be told apart.
func slogHandler(w io.Writer, format, agent string) slog.Handler {
	opts := &slog.HandlerOptions{Level: slog.LevelInfo}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if format == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	who := []slog.Attr{slog.Int("pid", os.Getpid())}
	if agent != "" {
		who = append([]slog.Attr{slog.String("agent", agent)}, who...)
	}
	return whoHandler{h, who}
}

// whoHandler appends attrs to every record, after the record's own: the
// summary line's attributes keep their documented order, and scripts that
// match them keep working.
type whoHandler struct {
	slog.Handler
	attrs []slog.Attr
}

func (h whoHandler) Handle(ctx context.Context, r slog.Record) error {
	r = r.Clone()
	r.AddAttrs(h.attrs...)
	return h.Handler.Handle(ctx, r)
}

func (h whoHandler) WithAttrs(a []slog.Attr) slog.Handler {
	return whoHandler{h.Handler.WithAttrs(a), h.attrs}
}

func (h whoHandler) WithGroup(name string) slog.Handler {
	return whoHandler{h.Handler.WithGroup(name), h.attrs}
}
