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
	"errors"
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

	// MinNodes guards against publishing an emptied backend: a run that
	// would take a role's published nodes from MinNodes or more to fewer
	// keeps that role's published nodes in the output (guard.go). 0
	// turns the guard off.
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

	// Sources says where a setting came from, by flag name: "env NAME"
	// for an environment variable, "file PATH" for a config file; absent
	// for a command-line flag or a default. Errors about a value name its
	// source (setting), so that a bad value in a file is not blamed on a
	// flag nobody typed.
	Sources map[string]string
	// Warnings found before the run (an unknown SERF_HB_* variable) are
	// logged with its report.
	Warnings []string

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
		return usageError("%s is empty", c.setting("nodes-dir", ""))
	case c.Output == "":
		return usageError("%s is empty", c.setting("output", ""))
	case len(c.Roles) == 0 || slices.Contains(c.Roles, ""):
		return usageError("%s is empty; hint: the role tag of the members to register, e.g. --role backend, or several: --role api,web", c.setting("role", strings.Join(c.Roles, ",")))
	}
	if c.Template != "" {
		// A missing template is a setting that names nothing, not a broken
		// template: exit 2 naming the file, before anything is touched.
		if fi, err := os.Stat(c.Template); err != nil {
			return usageError("%s: %v; hint: serf-hb template > FILE writes the embedded one to start from", c.setting("template", c.Template), statErr(err))
		} else if fi.IsDir() {
			return usageError("%s: is a directory, not a template file", c.setting("template", c.Template))
		}
	}
	if c.HAProxyTimeout < 0 {
		return usageError("--haproxy-timeout %v: must be positive, e.g. --haproxy-timeout 1s", c.HAProxyTimeout)
	}
	if c.MinNodes < 0 {
		return usageError("%s: must be 0 (off) or more", c.setting("min-nodes", c.MinNodes))
	}
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{
		{"check-timeout", c.CheckTimeout}, {"reload-timeout", c.ReloadTimeout}, {"lock-timeout", c.LockTimeout},
		{"rpc-timeout", c.RPCTimeout}, {"reconcile-timeout", c.ReconcileTimeout},
	} {
		if d.v <= 0 {
			return usageError("%s: must be positive, e.g. 10s", c.setting(d.flag, d.v))
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
			return usageError("%s: a member that left gracefully is never kept (its member-leave event removes it)", c.setting("status", strings.Join(c.Statuses, ",")))
		default:
			return usageError("%s: unknown member status %q; hint: alive, leaving or failed, comma-separated", c.setting("status", strings.Join(c.Statuses, ",")), st)
		}
	}
	if !alive {
		return usageError("%s: alive must be one of the statuses", c.setting("status", strings.Join(c.Statuses, ",")))
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
		return nil, usageError("%s: %v", c.setting("check", c.Check), err)
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
		return nil, usageError("%s has no {} for the staged file's path; hint: --check 'haproxy -c -f {}'", c.setting("check", c.Check))
	}
	return words, nil
}

// reloadArgv returns the reload command, or nil when none is configured.
func (c *Config) reloadArgv() ([]string, error) {
	words, err := splitCommand(c.Reload)
	if err != nil {
		return nil, usageError("%s: %v", c.setting("reload", c.Reload), err)
	}
	if len(words) == 0 {
		return nil, nil
	}
	return words, nil
}

// setting names a setting and its value as the user gave it: --flag
// VALUE, NAME=VALUE for an environment variable, or the config file and
// its key.
func (c *Config) setting(flag string, v any) string {
	src := c.Sources[flag]
	switch {
	case strings.HasPrefix(src, "env "):
		return fmt.Sprintf("%s=%v", strings.TrimPrefix(src, "env "), v)
	case strings.HasPrefix(src, "file "):
		return fmt.Sprintf("config file %s: %q: %v", strings.TrimPrefix(src, "file "), flag, v)
	}
	if s := fmt.Sprint(v); s == "" || strings.ContainsAny(s, " \t'\"") {
		return fmt.Sprintf("--%s %q", flag, s)
	}
	return fmt.Sprintf("--%s %v", flag, v)
}

// statErr is a stat error without the path its message repeats.
func statErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// DefaultTemplate returns the embedded default template's text.
func DefaultTemplate() []byte { return render.DefaultSource() }

// usageError is a bad flag, setting or environment: exit 2.
func usageError(format string, args ...any) error {
	return &ExitError{Code: ExitUsage, Err: fmt.Errorf(format, args...)}
}
