package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	"github.com/serf-hb/serf-hb/internal/haproxytest"
)

var update = flag.Bool("u", false, "rewrite the golden files embedded in testdata/script/*.txtar (review the diff before committing)")

// The end-to-end CLI tests: testdata/script/*.txtar, one behaviour per
// script, run against the real binary. Besides serf-hb itself the scripts
// get these programs on $PATH:
//
//	replay CAPTURE...  runs serf-hb once per captured Serf invocation
//	                   (testdata/captures/SCENARIO/NNN, or a whole
//	                   SCENARIO directory in order) with its exact
//	                   environment and stdin; arguments after -- go to
//	                   serf-hb; the exit status is the last run's
//	fake-s6-svc        a fake s6-svc that appends "s6-svc ARGS |
//	                   output=N-servers" to $WORK/reloads.log; exits
//	                   $FAKE_S6_EXIT (default 0). SERF_HB_RELOAD is
//	                   "fake-s6-svc -h /var/run/s6/services/ha" in every
//	                   script: a real "s6-svc -h DIR" is done in process
//	                   (handler/s6), which s6_errors.txtar covers.
//	fake-check FILE    a fake validator that logs its call to
//	                   $WORK/checks.log and exits $FAKE_CHECK_EXIT
//	                   (default 0), printing $FAKE_CHECK_MSG on stderr
//	haproxy            the real one: $HAPROXY_BIN, or haproxy from $PATH
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"serf-hb":     main,
		"replay":      replayMain,
		"fake-s6-svc": fakeS6Svc,
		"fake-check":  fakeCheck,
	})
}

func TestScripts(t *testing.T) {
	captures, err := filepath.Abs("testdata/captures")
	if err != nil {
		t.Fatal(err)
	}
	shim, err := haproxytest.Shim(t.TempDir(), haproxytest.Require(t, "serf-hb"))
	if err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir:           "testdata/script",
		UpdateScripts: *update,
		Setup: func(env *testscript.Env) error {
			env.Setenv("CAPTURES", captures)
			env.Setenv("PATH", shim+string(os.PathListSeparator)+env.Getenv("PATH"))
			// No SERF_* or SERF_HB_* from the developer's shell.
			for _, kv := range os.Environ() {
				if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "SERF_") {
					env.Setenv(k, "")
				}
			}
			env.Setenv("SERF_HB_RELOAD", "fake-s6-svc -h /var/run/s6/services/ha")
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"nodefiles": cmdNodefiles,
			"exits":     cmdExits,
		},
	})
}

// cmdNodefiles asserts the exact set of node files in a registry:
// nodefiles DIR NAME...  (dotfiles are not nodes).
func cmdNodefiles(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 1 {
		ts.Fatalf("usage: nodefiles DIR NAME...")
	}
	entries, err := os.ReadDir(ts.MkAbs(args[0]))
	ts.Check(err)
	var got []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") {
			got = append(got, e.Name())
		}
	}
	want := append([]string(nil), args[1:]...)
	sort.Strings(want)
	equal := strings.Join(got, " ") == strings.Join(want, " ")
	if equal == neg {
		ts.Fatalf("node files in %s: got [%s], want %s[%s]", args[0], strings.Join(got, " "), map[bool]string{true: "not ", false: ""}[neg], strings.Join(want, " "))
	}
}

// cmdExits runs a program and asserts its exact exit status:
// exits N PROG ARGS... (stdin, stdout and stderr work as with exec).
func cmdExits(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 || neg {
		ts.Fatalf("usage: exits N PROG ARGS...")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		got = ee.ExitCode()
	case err != nil:
		ts.Fatalf("%s: %v", args[1], err)
	}
	if got != want {
		ts.Fatalf("%s exited %d, want %d", args[1], got, want)
	}
}

// replayMain runs serf-hb for each captured invocation named on the
// command line.
func replayMain() {
	args := os.Args[1:]
	var captures, extra []string
	for i, a := range args {
		if a == "--" {
			extra = args[i+1:]
			break
		}
		captures = append(captures, a)
	}
	var runs []string
	for _, c := range captures {
		if fi, err := os.Stat(c); err == nil && fi.IsDir() {
			envs, _ := filepath.Glob(filepath.Join(c, "*.env"))
			sort.Strings(envs)
			for _, e := range envs {
				runs = append(runs, strings.TrimSuffix(e, ".env"))
			}
			continue
		}
		runs = append(runs, strings.TrimSuffix(c, ".env"))
	}
	if len(runs) == 0 {
		fmt.Fprintln(os.Stderr, "replay: no captures given")
		os.Exit(2)
	}
	code := 0
	for _, r := range runs {
		code = replayOne(r, extra)
	}
	os.Exit(code)
}

func replayOne(prefix string, args []string) int {
	envData, err := os.ReadFile(prefix + ".env")
	if err != nil {
		fmt.Fprintf(os.Stderr, "replay: %v\n", err)
		os.Exit(2)
	}
	stdin, err := os.Open(prefix + ".stdin")
	if err != nil {
		fmt.Fprintf(os.Stderr, "replay: %v\n", err)
		os.Exit(2)
	}
	defer stdin.Close()
	cmd := exec.Command("serf-hb", args...)
	cmd.Env = os.Environ()
	for _, kv := range bytes.Split(envData, []byte{0}) {
		if len(kv) > 0 {
			cmd.Env = append(cmd.Env, string(kv))
		}
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, os.Stdout, os.Stderr
	err = cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	default:
		fmt.Fprintf(os.Stderr, "replay: %v\n", err)
		os.Exit(2)
	}
	return 0
}

// fakeS6Svc records each call together with a fingerprint of the output
// file as the reload sees it ($SERF_HB_OUTPUT), so scripts can assert what
// was reloaded and that the file was complete.
func fakeS6Svc() {
	work := os.Getenv("WORK")
	line := "s6-svc " + strings.Join(os.Args[1:], " ")
	if out := os.Getenv("SERF_HB_OUTPUT"); out != "" {
		b, err := os.ReadFile(out)
		if err != nil {
			line += " | output=missing"
		} else {
			line += " | output=" + strconv.Itoa(bytes.Count(b, []byte("\n    server "))) + "-servers"
		}
	}
	f, err := os.OpenFile(filepath.Join(work, "reloads.log"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err == nil {
		fmt.Fprintln(f, line)
		f.Close()
	}
	if d, err := time.ParseDuration(os.Getenv("FAKE_S6_SLEEP")); err == nil {
		time.Sleep(d)
	}
	code, _ := strconv.Atoi(os.Getenv("FAKE_S6_EXIT"))
	if code != 0 {
		fmt.Fprintf(os.Stderr, "s6-svc: fatal: unable to control %s: fake failure\n", os.Args[len(os.Args)-1])
	}
	os.Exit(code)
}

func fakeCheck() {
	work := os.Getenv("WORK")
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: fake-check FILE")
		os.Exit(2)
	}
	b, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	f, err := os.OpenFile(filepath.Join(work, "checks.log"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err == nil {
		fmt.Fprintf(f, "fake-check %s bytes=%d\n", filepath.Base(os.Args[1]), len(b))
		f.Close()
	}
	code, _ := strconv.Atoi(os.Getenv("FAKE_CHECK_EXIT"))
	if msg := os.Getenv("FAKE_CHECK_MSG"); msg != "" {
		fmt.Fprintln(os.Stderr, msg)
	}
	os.Exit(code)
}
