// Package handler is the Serf side of serf-hb and the flow of one run: it
// parses SERF_* variables and stdin into member changes, and, holding the
// registry lock from the first read to the reload, applies them to the
// registry (nodestore), renders and installs the output (render), and runs
// the check and reload commands. It is the only package that logs.
package handler

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// Exit statuses. Serf treats every non-zero status alike (it logs
// "Error invoking script"); the distinct values are for operators and
// scripts.
const (
	ExitOK       = 0 // done, or nothing to do
	ExitFailure  = 1 // registry, lock, install or other failure
	ExitUsage    = 2 // bad flags, configuration or environment
	ExitRejected = 3 // some stdin lines were rejected; the rest was applied
	ExitTemplate = 4 // the template failed to parse or execute
	ExitCheck    = 5 // the check command refused the new file; old file kept
	ExitReload   = 6 // the reload command failed; retried on the next run
)

// ExitError is an error with the exit status it calls for. Logged reports
// whether the run's log line already carried it, so that package main does
// not print it a second time.
type ExitError struct {
	Code   int
	Err    error
	Logged bool
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

func usageError(format string, args ...any) error {
	return &ExitError{Code: ExitUsage, Err: fmt.Errorf(format, args...)}
}

// Config is what every command needs. The zero values of the I/O fields
// mean the process's own.
type Config struct {
	NodesDir string // registry directory
	Template string // template file; "" means the embedded HAProxy template
	Output   string // rendered file
	Check    string // check command line, {} is the staged file; "" means none
	Reload   string // reload command line; "" means none
	Role     string // only members with this role are registered
	LogFile  string // also append log lines here; "" means none

	CheckTimeout  time.Duration
	ReloadTimeout time.Duration
	LockTimeout   time.Duration

	// SyncConfig reaches the Serf agent, for sync, --reconcile and the
	// serf-hb-sync user event (sync.go).
	SyncConfig

	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
	// Environ lists the environment (for SERF_TAG_*).
	Environ func() []string
	Now     func() time.Time
}

func (c *Config) setDefaults() {
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
	if c.CheckTimeout <= 0 {
		c.CheckTimeout = 30 * time.Second
	}
	if c.ReloadTimeout <= 0 {
		c.ReloadTimeout = 10 * time.Second
	}
	if c.LockTimeout <= 0 {
		c.LockTimeout = 60 * time.Second
	}
}

// validate checks what can be checked before touching anything.
func (c *Config) validate() error {
	if c.NodesDir == "" {
		return usageError("--nodes-dir is empty")
	}
	if c.Output == "" {
		return usageError("--output is empty")
	}
	if c.Role == "" {
		return usageError("--role is empty")
	}
	if _, err := c.checkArgv("/staged"); err != nil {
		return err
	}
	if _, err := c.reloadArgv(); err != nil {
		return err
	}
	return nil
}

// checkArgv returns the check command with {} replaced by staged, or nil
// when no check is configured.
func (c *Config) checkArgv(staged string) ([]string, error) {
	if c.Check == "" {
		return nil, nil
	}
	words, err := SplitCommand(c.Check)
	if err != nil {
		return nil, usageError("--check: %v", err)
	}
	if len(words) == 0 {
		return nil, nil
	}
	found := false
	for i, w := range words {
		if r := replaceBraces(w, staged); r != w {
			words[i], found = r, true
		}
	}
	if !found {
		return nil, usageError("--check %q has no {} for the staged file's path; hint: --check 'haproxy -c -f {}'", c.Check)
	}
	return words, nil
}

func replaceBraces(w, path string) string {
	out := []byte{}
	for i := 0; i < len(w); i++ {
		if w[i] == '{' && i+1 < len(w) && w[i+1] == '}' {
			out = append(out, path...)
			i++
			continue
		}
		out = append(out, w[i])
	}
	return string(out)
}

// reloadArgv returns the reload command, or nil when none is configured.
func (c *Config) reloadArgv() ([]string, error) {
	if c.Reload == "" {
		return nil, nil
	}
	words, err := SplitCommand(c.Reload)
	if err != nil {
		return nil, usageError("--reload: %v", err)
	}
	if len(words) == 0 {
		return nil, nil
	}
	return words, nil
}

// exitCode returns the exit status err calls for.
func exitCode(err error) int {
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	if err != nil {
		return ExitFailure
	}
	return ExitOK
}
