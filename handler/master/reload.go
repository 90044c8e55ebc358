package master

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// pollMin and pollMax bound the pause between two show proc while a reload
// is verified: short at first (a small configuration reloads in tens of
// milliseconds), longer later so that a slow reload costs few connections.
const (
	pollMin = 2 * time.Millisecond
	pollMax = 20 * time.Millisecond
	// pollTimeout bounds one show proc of the polling.
	pollTimeout = time.Second
)

// Result is a verified reload.
type Result struct {
	OldWorker int // PID of the worker before the reload; 0 if there was none
	NewWorker int // PID of the worker serving the new configuration
	// Wait is the time from the trigger's return (for the master CLI's
	// reload: from sending it) to the verdict: what verifying adds to a
	// reload that is otherwise fire and forget.
	Wait time.Duration
	// Log holds HAProxy's startup messages when the master CLI gives them
	// (HAProxy 2.7 and later).
	Log []string
}

// ReloadError is a reload HAProxy refused: the new configuration did not
// load and the previous worker keeps serving the previous configuration.
type ReloadError struct {
	Addr   string // master CLI socket
	Worker int    // PID of the worker still serving; 0 if none
	Failed int    // the master's failed-reload count, this one included
	// Log holds HAProxy's messages of the failed attempt ([ALERT] lines
	// say why); empty when no source had them.
	Log []string
	// LogSource says where Log comes from: "master CLI" or a file name.
	LogSource string
}

func (e *ReloadError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "reload haproxy (master CLI %s): haproxy refused the new configuration (failed reloads: %d)", e.Addr, e.Failed)
	if e.Worker != 0 {
		fmt.Fprintf(&b, ", worker %d keeps serving the previous one", e.Worker)
	}
	if lines := alerts(e.Log); len(lines) > 0 {
		fmt.Fprintf(&b, ": %s (from %s)", strings.Join(lines, " | "), e.LogSource)
		b.WriteString("; hint: fix the configuration and reload again (haproxy -c does not try binds and other resources claimed at start-up)")
	} else if e.LogSource != "" {
		fmt.Fprintf(&b, "; hint: %s holds no messages of this reload: is it where haproxy's stderr goes? look there for its [ALERT] lines; haproxy -c does not try binds and other resources claimed at start-up", e.LogSource)
	} else {
		b.WriteString("; hint: haproxy 2.6 keeps no startup messages once a reload failed: find its [ALERT] lines in haproxy's stderr (its s6 log) and tell serf-hb where that log is; haproxy -c does not try binds and other resources claimed at start-up")
	}
	return b.String()
}

// alerts returns the lines that say why a load failed, or all of them if
// none is marked [ALERT].
func alerts(log []string) []string {
	var out []string
	for _, l := range log {
		if strings.HasPrefix(l, "[ALERT]") {
			out = append(out, strings.Join(strings.Fields(l), " "))
		}
	}
	if len(out) == 0 {
		return log
	}
	return out
}

// Reload reloads HAProxy and waits, within Timeout, until the master shows
// the verdict.
//
// trigger starts the reload; nil sends "reload" over the master CLI.
// Otherwise it is the caller's way, such as an s6 control command
// (s6-svc -2 DIR, or handler/s6 in process). A trigger that fails is
// returned as is.
//
// HAProxy 2.7 and later answer the master CLI's reload with the verdict and
// the startup messages; 2.6 answers nothing and re-executes, and so does
// every version for a signal. Then Reload polls show proc: a new current
// worker with 0 reloads and an unchanged failed count is a success; a
// failed count that went up is a *ReloadError, carrying HAProxy's messages
// when they can be had (the master CLI on 2.7+, else Client.Log or the
// master's stderr when it is a file).
func (c *Client) Reload(ctx context.Context, trigger func(context.Context) error) (Result, error) {
	begin := time.Now()
	ctx, cancel := c.bound(ctx)
	defer cancel()
	before, err := c.showProc(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("reload haproxy: before: %w", err)
	}
	old, _ := before.Current()
	res := Result{OldWorker: old.PID}

	var answer []byte
	start := time.Now()
	if trigger == nil {
		answer, err = c.exchange(ctx, "reload", false)
		if errors.Is(err, errNoAnswer) {
			// It answered show proc a moment ago: this is a 2.7+ master
			// still loading the new configuration.
			return res, fmt.Errorf("reload haproxy: master CLI %s: reload: no verdict within %v; hint: haproxy answers reload once the new configuration is loaded: a configuration this slow to load needs a longer timeout: %w", c.Addr, time.Since(begin).Round(time.Millisecond), context.DeadlineExceeded)
		}
		if err != nil && !transient(err) {
			return res, fmt.Errorf("reload haproxy: %w", err)
		}
	} else {
		if err := trigger(ctx); err != nil {
			return res, err
		}
		start = time.Now()
	}

	ok, log, known := parseReloadAnswer(answer)
	if !known && len(strings.TrimSpace(string(answer))) > 0 {
		// Such as "Permission denied" on a socket of level user.
		return res, &SocketError{Addr: c.Addr, Cmd: "reload", Err: answerError(string(answer), "not a reload's answer")}
	}
	if known {
		// 2.7+: the verdict is in; show proc only names the new worker.
		after, err := c.await(ctx, func(Procs) bool { return true })
		if err != nil {
			return res, fmt.Errorf("reload haproxy: after: %w", err)
		}
		cur, _ := after.Current()
		if !ok {
			return res, c.reloadError(ctx, after, log)
		}
		res.NewWorker, res.Log, res.Wait = cur.PID, log, time.Since(start)
		return res, nil
	}

	var failed bool
	after, err := c.await(ctx, func(p Procs) bool {
		if p.Master.PID != before.Master.PID {
			// Restarted, not reloaded: any worker it has is new.
			_, ok := p.Current()
			return ok
		}
		if p.Failed > before.Failed {
			failed = true
			return true
		}
		cur, ok := p.Current()
		return ok && cur.PID != old.PID && cur.Reloads == 0
	})
	if err != nil {
		return res, fmt.Errorf("reload haproxy: %w", c.noVerdict(before, err, time.Since(begin)))
	}
	if failed {
		return res, c.reloadError(ctx, after, nil)
	}
	cur, _ := after.Current()
	res.NewWorker, res.Wait = cur.PID, time.Since(start)
	return res, nil
}

// await polls show proc until done holds, retrying what a re-executing
// master causes (refused or reset connections, empty answers), until ctx
// ends.
func (c *Client) await(ctx context.Context, done func(Procs) bool) (Procs, error) {
	delay := pollMin
	var last error
	for {
		// Each poll is bounded on its own: a connection accepted while the
		// master re-execs may never be answered, and must not use up the
		// whole reload's time.
		pctx, cancel := context.WithTimeout(ctx, pollTimeout)
		p, err := c.showProc(pctx)
		pollExpired := expired(pctx) && !expired(ctx)
		cancel()
		switch {
		case err == nil && done(p):
			return p, nil
		case err == nil:
			last = nil
		case !expired(ctx) && !pollExpired && !transient(err):
			return Procs{}, err
		default:
			last = err
		}
		if expired(ctx) {
			return Procs{}, timedOut(ctx, last)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return Procs{}, timedOut(ctx, last)
		case <-t.C:
		}
		delay = min(2*delay, pollMax)
	}
}

// expired reports whether ctx is done or its deadline passed: a
// connection's deadline, set to ctx's, may fire a moment before ctx is
// marked done.
func expired(ctx context.Context) bool {
	dl, ok := ctx.Deadline()
	return ctx.Err() != nil || ok && !time.Now().Before(dl)
}

func timedOut(ctx context.Context, last error) error {
	cause := ctx.Err()
	if cause == nil {
		cause = context.DeadlineExceeded
	}
	if last == nil {
		last = cause
	}
	return &waitError{last: last, ctx: cause}
}

// waitError is a verification that ran out of time; last is the last
// thing that went wrong, ctx why it stopped.
type waitError struct {
	last, ctx error
}

func (e *waitError) Error() string { return e.last.Error() }
func (e *waitError) Unwrap() []error {
	return []error{e.last, e.ctx}
}

// noVerdict explains a reload that neither succeeded nor failed in time.
func (c *Client) noVerdict(before Procs, err error, waited time.Duration) error {
	var we *waitError
	if !errors.As(err, &we) {
		return err
	}
	old, _ := before.Current()
	msg := fmt.Sprintf("master CLI %s: no new worker and no failed reload within %v (master %d, worker %d before the reload)", c.Addr, waited.Round(time.Millisecond), before.Master.PID, old.PID)
	if we.last != we.ctx {
		msg += "; last: " + we.last.Error()
	}
	return fmt.Errorf("%s; hint: was the reload sent to this haproxy? s6 drops a signal sent while the service is down, and only reaches haproxy if the run script execs it in master-worker mode (exec haproxy -W -db -S %s ...): %w", msg, c.Addr, we.ctx)
}

// parseReloadAnswer reads the answer of a 2.7+ master to reload:
//
//	Success=1
//	--
//	[NOTICE]   (482713) : haproxy version is 2.7-dev7-4827fb-69
//	[NOTICE]   (482713) : Loading success.
//
// The "--" and the startup messages come only when HAProxy keeps them (built
// with USE_SHM_OPEN). known is false for anything else, such as 2.6's
// empty answer.
func parseReloadAnswer(answer []byte) (ok bool, log []string, known bool) {
	lines := strings.Split(strings.TrimSpace(strings.ReplaceAll(string(answer), "\r\n", "\n")), "\n")
	switch strings.TrimSpace(lines[0]) {
	case "Success=1":
		ok = true
	case "Success=0":
	default:
		return false, nil, false
	}
	if len(lines) > 1 && strings.TrimSpace(lines[1]) == "--" {
		log = nonEmpty(lines[2:])
	}
	return ok, log, true
}

func nonEmpty(lines []string) []string {
	var out []string
	for _, l := range lines {
		if l = strings.TrimRight(l, " \t\r"); strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

// reloadError builds the error of a refused reload with the best messages
// at hand: those of the reload's answer, else the master CLI's show
// startup-logs (2.7+ keeps the failed attempt's there), else HAProxy's
// stderr.
func (c *Client) reloadError(ctx context.Context, after Procs, log []string) *ReloadError {
	cur, _ := after.Current()
	e := &ReloadError{Addr: c.Addr, Worker: cur.PID, Failed: after.Failed, Log: log, LogSource: "master CLI"}
	if len(e.Log) > 0 {
		return e
	}
	if a, err := c.exchange(ctx, "show startup-logs", true); err == nil && !strings.HasPrefix(string(a), "Unknown command") {
		if e.Log = nonEmpty(strings.Split(string(a), "\n")); len(e.Log) > 0 {
			return e
		}
	}
	e.Log, e.LogSource = c.stderrLog(ctx, after.Master.PID)
	return e
}
