// Package handler is the Serf side of serf-hb and the flow of one run.
//
// A run is three steps. A source of changes (an event's member lines, the
// agent's member list, or nothing for render) decides what the registry
// should become; one transaction, holding the registry lock from the
// first read to the reload, applies that to the registry (nodestore),
// renders the output (render), stages, checks, installs and reloads it;
// one report says what happened, logged once by the entry point, which
// returns the exit status. Deciding changes is pure (decide.go); the
// transaction is transact (run.go).
//
// It is the only package that logs.
package handler

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/serf-hb/serf-hb/handler/serfrpc"
	"github.com/serf-hb/serf-hb/render"
)

// Config is what every command needs. Its defaults live in one place, the
// CLI (package main); here a zero duration is a usage error. The zero
// values of the I/O fields mean the process's own.
type Config struct {
	NodesDir string   // registry directory
	Template string   // template file; "" means the embedded HAProxy template
	Output   string   // rendered file
	Check    string   // check command line, {} is the staged file; "" means none
	Reload   string   // reload command line; "" means none
	Roles    []string // members of these roles are registered; "*" means any
	LogFile  string   // also append log lines here; "" means none
	// LogFormat is "text" (slog's key=value lines; "" too) or "json".
	LogFormat string
	// MetricsFile, when set, is rewritten after each run with Prometheus
	// metrics, for node_exporter's textfile collector (metrics.go).
	MetricsFile string

	// MasterSocket is HAProxy's master CLI (haproxy -W -S PATH): with it,
	// every reload is verified, and a refused one rolled back (reload.go).
	MasterSocket string
	// HAProxyLog is the file HAProxy's stderr goes to, read for its startup
	// errors after a failed reload; "" means the master's stderr when that
	// is a file.
	HAProxyLog string

	// HAProxySocket is HAProxy's runtime API (a stats socket at level
	// admin, unix path or HOST:PORT): with it, changes to server lines only
	// are applied live instead of reloading (live.go).
	HAProxySocket string
	// HAProxyTimeout bounds all the runtime API commands of one run
	// together: a stuck HAProxy costs a run that long at most (live.go).
	HAProxyTimeout time.Duration
	// DrainTimeout is no longer used (a removal never waits for a drain):
	// a run given one warns.
	DrainTimeout time.Duration

	// MinNodes guards against publishing an emptied backend list: a run
	// that would take the published node count from MinNodes or more to
	// fewer keeps the output (guard.go). 0 turns the guard off.
	MinNodes int

	CheckTimeout  time.Duration
	ReloadTimeout time.Duration
	LockTimeout   time.Duration

	RPCAddr    string        // the agent's RPC address, for sync and --reconcile
	RPCAuth    string        // the agent's RPC auth key; "" means none
	RPCTimeout time.Duration // bound on the sync command's query

	// Reconcile makes every member event sync too, within
	// ReconcileTimeout, before it publishes.
	Reconcile        bool
	ReconcileTimeout time.Duration

	// Statuses are the member statuses that keep a node registered;
	// empty means alive only. Left never counts.
	Statuses []string

	// Members replaces the agent as the source of members (tests).
	Members memberSource

	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
	// Environ lists the environment (for SERF_TAG_*).
	Environ func() []string
	Now     func() time.Time
}

// memberSource lists the cluster's members.
type memberSource interface {
	Members(ctx context.Context) ([]serfrpc.Member, error)
}

func (c *Config) setIO() {
	if c.Stdin == nil {
		c.Stdin = os.Stdin
	}
	if c.Stdout == nil {
		c.Stdout = os.Stdout
	}
	if c.Stderr == nil {
		c.Stderr = os.Stderr
	}
	if c.Getenv == nil {
		c.Getenv = os.Getenv
	}
	if c.Environ == nil {
		c.Environ = os.Environ
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// validate checks what can be checked before touching anything.
func (c *Config) validate() error {
	switch {
	case c.NodesDir == "":
		return usageError("--nodes-dir is empty")
	case c.Output == "":
		return usageError("--output is empty")
	case len(c.Roles) == 0 || slices.Contains(c.Roles, ""):
		return usageError("--role is empty; hint: the role tag of the members to register, e.g. --role backend, or several: --role api,web")
	}
	if c.HAProxyTimeout < 0 {
		return usageError("--haproxy-timeout %v: must be positive, e.g. --haproxy-timeout 1s", c.HAProxyTimeout)
	}
	if c.MinNodes < 0 {
		return usageError("--min-nodes %d: must be 0 (off) or more", c.MinNodes)
	}
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{
		{"check-timeout", c.CheckTimeout}, {"reload-timeout", c.ReloadTimeout}, {"lock-timeout", c.LockTimeout},
		{"rpc-timeout", c.RPCTimeout}, {"reconcile-timeout", c.ReconcileTimeout},
	} {
		if d.v <= 0 {
			return usageError("--%s %v: must be positive, e.g. --%s 10s", d.flag, d.v, d.flag)
		}
	}
	if _, err := c.checkArgv("/staged"); err != nil {
		return err
	}
	if _, err := c.reloadArgv(); err != nil {
		return err
	}
	return c.validateStatuses()
}

// validateStatuses checks --status.
func (c *Config) validateStatuses() error {
	alive := len(c.Statuses) == 0
	for _, st := range c.Statuses {
		switch st {
		case serfrpc.StatusAlive:
			alive = true
		case serfrpc.StatusLeaving, serfrpc.StatusFailed:
		case serfrpc.StatusLeft:
			return usageError("--status %s: a member that left gracefully is never kept (its member-leave event removes it)", st)
		default:
			return usageError("--status %q: unknown member status; hint: alive, leaving or failed, comma-separated", st)
		}
	}
	if !alive {
		return usageError("--status %s: alive must be one of the statuses", strings.Join(c.Statuses, ","))
	}
	return nil
}

// counts reports whether a member with this status stays registered.
func (c *Config) counts(status string) bool {
	if len(c.Statuses) == 0 {
		return status == serfrpc.StatusAlive
	}
	return status != serfrpc.StatusLeft && slices.Contains(c.Statuses, status)
}

// checkArgv returns the check command with {} replaced by staged, or nil
// when no check is configured.
func (c *Config) checkArgv(staged string) ([]string, error) {
	if c.Check == "" {
		return nil, nil
	}
	words, err := splitCommand(c.Check)
	if err != nil {
		return nil, usageError("--check: %v", err)
	}
	if len(words) == 0 {
		return nil, nil
	}
	found := false
	for i, w := range words {
		if r := strings.ReplaceAll(w, "{}", staged); r != w {
			words[i], found = r, true
		}
	}
	if !found {
		return nil, usageError("--check %q has no {} for the staged file's path; hint: --check 'haproxy -c -f {}'", c.Check)
	}
	return words, nil
}

// reloadArgv returns the reload command, or nil when none is configured.
func (c *Config) reloadArgv() ([]string, error) {
	words, err := splitCommand(c.Reload)
	if err != nil {
		return nil, usageError("--reload: %v", err)
	}
	if len(words) == 0 {
		return nil, nil
	}
	return words, nil
}

// DefaultTemplate returns the embedded default template's text.
func DefaultTemplate() []byte { return render.DefaultSource() }

// usageError is a bad flag, setting or environment: exit 2.
func usageError(format string, args ...any) error {
	return &ExitError{Code: ExitUsage, Err: fmt.Errorf(format, args...)}
}
