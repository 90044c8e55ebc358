package handler

import (
	"errors"
	"fmt"
)

// Exit statuses. Serf treats every non-zero status alike (it logs
// "Error invoking script"); the distinct values are for operators and
// scripts. This file is the one place that decides them.
const (
	ExitOK       = 0 // done, or nothing to do
	ExitFailure  = 1 // registry, lock, install or other failure
	ExitUsage    = 2 // bad flags, configuration or environment
	ExitRejected = 3 // some input (lines, members, registry entries) was rejected; the rest was applied
	ExitTemplate = 4 // the template failed to parse or execute; old output kept
	ExitCheck    = 5 // the check command refused the new file; old output kept
	ExitReload   = 6 // the reload failed (or failed verification); retried on the next run
	ExitGuarded  = 7 // --min-nodes kept a role's published nodes: the registry was updated, other changes published
	ExitDiff     = 1 // render --dry-run --diff --exit-code: the output would change
)

// ExitError is an error with the exit status it calls for.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// reported is the exit status of a run whose report has been logged: the
// error, if any, has reached the user; only the status is left to return.
type reported int

func (r reported) Error() string { return fmt.Sprintf("exit status %d (reported)", int(r)) }

// IsReported reports whether err needs no printing: it is nil, or a run's
// report has carried it already.
func IsReported(err error) bool {
	var rep reported
	return err == nil || errors.As(err, &rep)
}

// ExitCode returns the exit status err calls for: 0 for nil, the code of
// an ExitError or reported, 1 for anything else.
func ExitCode(err error) int {
	var ee *ExitError
	var rep reported
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &rep):
		return int(rep)
	case errors.As(err, &ee):
		return ee.Code
	}
	return ExitFailure
}

// exitError marks err with code, unless it already carries one.
func exitError(code int, err error) error {
	var ee *ExitError
	if err == nil || errors.As(err, &ee) {
		return err
	}
	return &ExitError{Code: code, Err: err}
}
