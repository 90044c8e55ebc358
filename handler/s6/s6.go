// Package s6 sends a control command to s6-supervise the way `s6-svc -h DIR`
// does, without starting a process: it opens DIR/supervise/control (a FIFO
// s6-supervise reads), writes the command byte and closes it.
//
// Its invariant: Send does exactly the system calls s6-svc 2.11 does and
// fails in the same situations with the same exit code (100 or 111), so a
// caller can swap an exec of s6-svc for Send without changing what an
// operator sees or a script tests. Like s6-svc, a successful Send means the
// command was handed to s6-supervise, not that the service acted on it:
// s6-supervise drops a signal while the service is down.
package s6

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Exit codes s6-svc gives, which Error.Code carries.
const (
	// CodeNotListening is s6-svc's exit code when no s6-supervise reads the
	// control FIFO or the supervise directory is broken (and on usage
	// errors).
	CodeNotListening = 100
	// CodeSystem is s6-svc's exit code when the service directory is
	// missing or not accessible, or a system call fails.
	CodeSystem = 111
)

// supervise and control name the FIFO s6-supervise listens on, relative to
// the service directory (S6_SUPERVISE_CTLDIR in s6's config).
const (
	supervise = "supervise"
	control   = "control"
)

// Signal is one control command for the s6-supervise of a service
// directory: Cmd is the command letter of s6-svc ('h' for SIGHUP, '2' for
// SIGUSR2), Dir the service directory as given.
type Signal struct {
	Cmd byte
	Dir string
}

// Parse recognises an s6-svc command line that Send can carry out in
// process: the program s6-svc (any directory), exactly one of the commands
// -h or -2, optionally "--", and one non-empty service directory. It
// reports false for anything else (other commands, several commands, -w
// waits, -T, extra arguments), which the caller should run as a command.
func Parse(argv []string) (Signal, bool) {
	if len(argv) < 3 || filepath.Base(argv[0]) != "s6-svc" {
		return Signal{}, false
	}
	var cmd byte
	switch argv[1] {
	case "-h":
		cmd = 'h'
	case "-2":
		cmd = '2'
	default:
		return Signal{}, false
	}
	rest := argv[2:]
	if rest[0] == "--" {
		rest = rest[1:]
	} else if strings.HasPrefix(rest[0], "-") && rest[0] != "-" {
		// s6-svc would read it as more options.
		return Signal{}, false
	}
	// s6-svc ignores extra arguments with a warning; a command line with
	// them is not what its author meant, so s6-svc should say so.
	if len(rest) != 1 || rest[0] == "" {
		return Signal{}, false
	}
	return Signal{Cmd: cmd, Dir: rest[0]}, true
}

// String returns the s6-svc command line that does what s.Send does.
func (s Signal) String() string {
	return fmt.Sprintf("s6-svc -%c %s", s.Cmd, s.Dir)
}

// Send writes s.Cmd to s.Dir's control FIFO. It never blocks on a FIFO
// without a reader: the open is non-blocking and fails with ENXIO, which
// means no s6-supervise is listening. The error is an *Error.
func (s Signal) Send() error {
	// Concatenated, not filepath.Join: Join would resolve "link/.." the
	// lexical way, and s6-svc lets the kernel resolve it.
	fifo := s.Dir + "/" + supervise + "/" + control
	// O_NONBLOCK so that the open fails at once instead of waiting for a
	// reader; O_CLOEXEC so that a command serf-hb runs meanwhile does not
	// inherit the FIFO.
	fd, err := unix.Open(fifo, unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return s.openError(err)
	}
	defer unix.Close(fd)
	// Blocking again, as s6-svc does: a full FIFO (s6-supervise busy) makes
	// the write wait rather than fail with EAGAIN.
	if err := unix.SetNonblock(fd, false); err != nil {
		return s.fail(CodeSystem, err, "")
	}
	for {
		_, err = unix.Write(fd, []byte{s.Cmd})
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return s.fail(CodeSystem, err, "")
	}
	return nil
}

// openError tells apart, as s6_svc_writectl does, a missing service
// directory (111), a missing supervise directory (100, nobody ever
// supervised it or s6-supervise is gone) and a supervise directory without
// a usable control FIFO (100).
func (s Signal) openError(err error) error {
	switch err {
	case unix.ENXIO:
		return s.fail(CodeNotListening, nil, "")
	case unix.ENOENT, unix.ENOTDIR, unix.EISDIR:
	default:
		return s.fail(CodeSystem, err, "")
	}
	dir, derr := unix.Open(s.Dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if derr != nil {
		return s.fail(CodeSystem, derr, "")
	}
	sub, serr := unix.Openat(dir, supervise, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	unix.Close(dir)
	if serr == unix.ENOENT {
		return s.fail(CodeNotListening, nil, "")
	}
	if serr == nil {
		unix.Close(sub)
		serr = err
	}
	return s.fail(CodeNotListening, serr, "something is wrong with the "+s.Dir+"/"+supervise+" directory")
}

func (s Signal) fail(code int, err error, what string) *Error {
	return &Error{Signal: s, Code: code, Err: err, what: what}
}

// Error is a control command that did not reach s6-supervise. Code is the
// exit code s6-svc gives in the same situation: CodeNotListening or
// CodeSystem. Err is the system error behind it, nil when the FIFO simply
// has no reader.
type Error struct {
	Signal Signal
	Code   int
	Err    error
	what   string // a diagnosis that replaces the generic one
}

func (e *Error) Unwrap() error { return e.Err }

func (e *Error) Error() string {
	dir := e.Signal.Dir
	var b strings.Builder
	fmt.Fprintf(&b, "%s: ", e.Signal)
	switch {
	case e.Code == CodeNotListening && e.Err == nil:
		fmt.Fprintf(&b, "supervisor not listening (s6-svc exits 100); hint: is s6-supervise running for %s? check with s6-svok %s, and that %s is the directory s6-svscan supervises (s6-overlay v2: /var/run/s6/services/NAME, v3: /run/service/NAME)", dir, dir, dir)
	case e.Code == CodeNotListening:
		fmt.Fprintf(&b, "%s: %v (s6-svc exits 100); hint: restart the s6-supervise of %s, which recreates %s", e.what, e.Err, dir, filepath.Join(dir, supervise, control))
	case errors.Is(e.Err, unix.EACCES) || errors.Is(e.Err, unix.EPERM):
		fmt.Fprintf(&b, "%v (s6-svc exits 111); hint: run serf-hb as a user that may write %s (root or the service's owner)", e.Err, filepath.Join(dir, supervise, control))
	case errors.Is(e.Err, unix.ENOENT) || errors.Is(e.Err, unix.ENOTDIR):
		fmt.Fprintf(&b, "service directory: %v (s6-svc exits 111); hint: give the directory s6-svscan supervises (s6-overlay v2: /var/run/s6/services/NAME, v3: /run/service/NAME)", e.Err)
	default:
		fmt.Fprintf(&b, "%v (s6-svc exits 111)", e.Err)
	}
	return b.String()
}

// Hint explains an exit code of s6-svc run as argv, which otherwise says
// little (exit 0 only means the command was handed to s6-supervise); ""
// when argv is not s6-svc or the code has no meaning of its own.
func Hint(argv []string, code int) string {
	if filepath.Base(argv[0]) != "s6-svc" || len(argv) < 2 {
		return ""
	}
	dir := argv[len(argv)-1]
	switch code {
	case CodeSystem:
		return fmt.Sprintf("service directory %s is missing or not accessible", dir)
	case CodeNotListening:
		return fmt.Sprintf("service directory %s is not supervised: no s6-supervise is listening, or the usage is wrong", dir)
	case 102:
		return fmt.Sprintf("service directory %s: s6-supervise is not running", dir)
	}
	return ""
}

// Words says what a failed in-process Send means as the failed s6-svc
// command argv would have said it: its exit status, what that means,
// s6-svc's own message, and what to do.
func (e *Error) Words(argv []string) string {
	dir := e.Signal.Dir
	fatal := fmt.Sprintf("unable to control %s: supervisor not listening", dir)
	switch {
	case e.Code == CodeNotListening && e.Err != nil:
		fatal = fmt.Sprintf("something is wrong with the %s/supervise directory: %s", dir, strerror(e.Err))
	case e.Err != nil:
		fatal = fmt.Sprintf("unable to control %s: %s", dir, strerror(e.Err))
	}
	msg := fmt.Sprintf("exited %d (%s): s6-svc: fatal: %s", e.Code, Hint(argv, e.Code), fatal)
	if _, hint, ok := strings.Cut(e.Error(), "hint: "); ok {
		msg += "; hint: " + hint
	}
	return msg
}

// strerror spells an errno as C's strerror does ("No such file or
// directory"), as s6-svc prints it.
func strerror(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	s := err.Error()
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
