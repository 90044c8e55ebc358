package handler

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/kballard/go-shellquote"
	"github.com/serf-hb/serf-hb/handler/s6"
)

// outputTail bounds how much of a command's output an error carries: Serf
// keeps only the last 8 KiB of a handler's output.
const outputTail = 2 << 10

// splitCommand splits a command line into words the way a POSIX shell would
// (quotes and backslashes honoured), without expanding anything: serf-hb
// runs commands from argv, never through a shell.
func splitCommand(line string) ([]string, error) {
	words, err := shellquote.Split(line)
	if err != nil {
		return nil, fmt.Errorf("split command %q: %v", line, err)
	}
	return words, nil
}

// runCommand runs argv with a time limit and returns an error carrying its
// exit status and the tail of its combined output. On timeout the whole
// process group is killed, so a shell script's children die with it.
func runCommand(ctx context.Context, argv []string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var out tailBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// A grandchild that keeps stdout open must not hold the run forever.
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if err == nil {
		return nil
	}
	msg := commandString(argv)
	var ee *exec.ExitError
	switch {
	case ctx.Err() == context.DeadlineExceeded:
		msg += fmt.Sprintf(": timed out after %v, killed", timeout)
	case errors.As(err, &ee) && ee.Exited():
		msg += fmt.Sprintf(": exited %d", ee.ExitCode())
		if hint := s6.Hint(argv, ee.ExitCode()); hint != "" {
			msg += " (" + hint + ")"
		}
	case errors.Is(err, exec.ErrNotFound):
		msg += ": command not found in $PATH"
	default:
		msg += ": " + err.Error()
	}
	if o := out.String(); o != "" {
		msg += ": " + o
	}
	return &commandError{Argv: argv, msg: msg, Err: err}
}

// commandError is a command that failed, timed out or could not start.
type commandError struct {
	Argv []string
	msg  string
	Err  error
}

func (e *commandError) Error() string { return e.msg }
func (e *commandError) Unwrap() error { return e.Err }

func commandString(argv []string) string {
	return shellquote.Join(argv...)
}

// tailBuffer keeps the last outputTail bytes written to it.
type tailBuffer struct {
	b       []byte
	dropped bool
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 2*outputTail {
		t.b = append(t.b[:0], t.b[len(t.b)-outputTail:]...)
		t.dropped = true
	}
	return len(p), nil
}

// String returns the kept output on one line: newlines become " | ", so
// that one log line carries it.
func (t *tailBuffer) String() string {
	b := t.b
	if len(b) > outputTail {
		b, t.dropped = b[len(b)-outputTail:], true
	}
	s := strings.TrimSpace(string(bytes.ToValidUTF8(b, []byte("?"))))
	lines := strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' })
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	s = strings.Join(lines, " | ")
	if t.dropped && s != "" {
		s = "..." + s
	}
	return s
}
