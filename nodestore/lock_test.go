package nodestore

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The lock must exclude other processes, not only goroutines: serf-hb runs
// as one short-lived process per event. These tests re-run the test binary
// as the contending process (TestMain's helper mode).

const helperEnv = "NODESTORE_LOCK_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "hold":
		os.Exit(helperHold(os.Getenv("DIR")))
	case "count":
		os.Exit(helperCount(os.Getenv("DIR"), os.Getenv("N")))
	}
	os.Exit(2)
}

// helperHold takes the lock, says "locked" and holds it until stdin closes.
func helperHold(dir string) int {
	st, err := Open(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	unlock, err := st.Lock(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("locked")
	bufio.NewReader(os.Stdin).ReadString('\n')
	unlock()
	return 0
}

// helperCount increments a counter file N times, each a read-modify-write
// under the lock with a pause in the middle that invites a lost update.
func helperCount(dir, n string) int {
	st, err := Open(dir)
	if err != nil {
		return 1
	}
	count, _ := strconv.Atoi(n)
	p := filepath.Join(dir, ".counter")
	for i := 0; i < count; i++ {
		unlock, err := st.Lock(context.Background())
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		b, _ := os.ReadFile(p)
		v, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		time.Sleep(100 * time.Microsecond)
		if err := os.WriteFile(p, []byte(strconv.Itoa(v+1)), 0o644); err != nil {
			return 1
		}
		unlock()
	}
	return 0
}

func helper(t *testing.T, mode, dir string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append([]string{helperEnv + "=" + mode, "DIR=" + dir}, env...)...)
	cmd.Stderr = os.Stderr
	return cmd
}

// startHolder starts a process holding the lock on dir and returns once it
// holds it. Closing the returned stdin releases the lock.
func startHolder(t *testing.T, dir string) (*exec.Cmd, func()) {
	t.Helper()
	cmd := helper(t, "hold", dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(stdout).ReadString('\n')
		line <- s
	}()
	select {
	case s := <-line:
		if s != "locked\n" {
			t.Fatalf("holder said %q, want locked", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("holder did not take the lock within 10s")
	}
	return cmd, func() { stdin.Close() }
}

func TestLockExcludesAnotherProcess(t *testing.T) {
	st := newStore(t)
	holder, release := startHolder(t, st.Dir())

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if unlock, err := st.Lock(ctx); err == nil {
		unlock()
		t.Fatal("took the lock while another process held it")
	} else if !strings.Contains(err.Error(), st.Dir()) {
		t.Errorf("lock timeout error %q does not name the registry", err)
	}

	release()
	if err := holder.Wait(); err != nil {
		t.Fatalf("holder: %v", err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	unlock, err := st.Lock(ctx)
	if err != nil {
		t.Fatalf("lock after the holder released it: %v", err)
	}
	unlock()
}

func TestLockReleasedWhenHolderDies(t *testing.T) {
	st := newStore(t)
	holder, _ := startHolder(t, st.Dir())
	if err := holder.Process.Kill(); err != nil { // SIGKILL: no chance to unlock
		t.Fatal(err)
	}
	holder.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	unlock, err := st.Lock(ctx)
	if err != nil {
		t.Fatalf("lock after its holder was killed: %v (stale lock)", err)
	}
	unlock()
}

func TestLockSerializesProcesses(t *testing.T) {
	st := newStore(t)
	const procs, each = 4, 50
	cmds := make([]*exec.Cmd, procs)
	for i := range cmds {
		cmds[i] = helper(t, "count", st.Dir(), "N="+strconv.Itoa(each))
		if err := cmds[i].Start(); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Fatalf("counter process: %v", err)
		}
	}
	b, err := os.ReadFile(filepath.Join(st.Dir(), ".counter"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(b)); got != strconv.Itoa(procs*each) {
		t.Fatalf("counter = %s after %d locked increments by %d processes: updates were lost", got, procs*each, procs)
	}
}
