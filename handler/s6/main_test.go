package s6

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/serf-hb/serf-hb/internal/haproxytest"
)

// The test binary doubles as two helper programs, chosen by environment
// variable: a service that counts the signals s6-supervise delivers, and a
// Send run under another user id (the permission test).
const (
	envCounter = "HB_S6_TEST_COUNTER" // file to append one letter per signal to
	envSend    = "HB_S6_TEST_SEND"    // service directory to Send 'h' to

	// noRaceSleep spares each helper the race detector's 1 s sleep at exit.
	noRaceSleep = "GORACE=atexit_sleep_ms=0"
)

func TestMain(m *testing.M) {
	if f := os.Getenv(envCounter); f != "" {
		os.Exit(countSignals(f))
	}
	if dir := os.Getenv(envSend); dir != "" {
		err := Signal{Cmd: 'h', Dir: dir}.Send()
		var se *Error
		if errors.As(err, &se) {
			fmt.Printf("%d\t%s\n", se.Code, se)
		} else {
			fmt.Printf("0\t%v\n", err)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// countSignals appends "h" to file for each SIGHUP and "2" for each
// SIGUSR2, after writing file.ready once it listens. It exits on SIGTERM
// (s6-svscanctl -t) and, so that nothing outlives a crashed test, after a
// minute.
func countSignals(file string) int {
	c := make(chan os.Signal, 16)
	signal.Notify(c, syscall.SIGHUP, syscall.SIGUSR2, syscall.SIGTERM)
	if err := os.WriteFile(file+".ready", []byte(fmt.Sprint(os.Getpid())), 0o644); err != nil {
		return 1
	}
	deadline := time.After(time.Minute)
	for {
		select {
		case s := <-c:
			letter := map[os.Signal]string{syscall.SIGHUP: "h", syscall.SIGUSR2: "2"}[s]
			if letter == "" {
				return 0
			}
			f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
			if err != nil {
				return 1
			}
			f.WriteString(letter)
			f.Close()
		case <-deadline:
			return 0
		}
	}
}

// startScan starts s6-svscan on a new scan directory holding one service,
// "counter", whose run script execs this test binary as a signal counter.
// It returns the service directory and the counter's file once the
// counter listens.
func startScan(t testing.TB) (svc, counts string) {
	t.Helper()
	haproxytest.RequireTools(t, "s6-svscan", "s6-supervise", "s6-svscanctl", "s6-svc")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	root := haproxytest.ShortDir(t)
	scan := filepath.Join(root, "scan")
	svc = filepath.Join(scan, "counter")
	counts = filepath.Join(root, "counts")
	run := fmt.Sprintf("#!/bin/sh\nexec env %s %s=%s %s -test.run='^$'\n", noRaceSleep, envCounter, counts, self)
	if err := os.MkdirAll(svc, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(svc, "run"), []byte(run), 0o755); err != nil {
		t.Fatal(err)
	}
	haproxytest.StartScan(t, scan, io.Discard)
	haproxytest.WaitFor(t, 5*time.Second, "the counter service to listen", func() bool {
		_, err := os.Stat(counts + ".ready")
		return err == nil
	})
	return svc, counts
}

// asUser returns a copy of this test binary that user nobody may run
// (the build directory is private to root).
func asUser(t testing.TB) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst := filepath.Join(haproxytest.ShortDir(t), "s6.test")
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, src); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return dst
}

// s6svc runs the real s6-svc with args, as uid (0 = as is), and returns
// its exit code and its last stderr line without the "s6-svc: fatal: "
// prefix.
func s6svc(t testing.TB, uid uint32, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command("s6-svc", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if uid != 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
	}
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("s6-svc %s: %v", strings.Join(args, " "), err)
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	msg := strings.TrimPrefix(lines[len(lines)-1], "s6-svc: fatal: ")
	// s6-svc 2.11 prints "fatal: : unable to control ..." for this one.
	msg = strings.TrimPrefix(msg, ": ")
	return cmd.ProcessState.ExitCode(), msg
}
