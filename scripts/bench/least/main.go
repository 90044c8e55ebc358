// Command least is the least a handler can do for a member-join with the
// durability serf-hb gives it, for scripts/bench.sh --least: take the lock,
// write each member's node file (temp file, fsync, rename, fsync of the
// directory), read every node file's first line, write the server lines
// the same way when they changed, and exec the reload command. No CLI
// library, no template engine, no index, no validation, no log: the time
// it takes is the part of serf-hb's time that no implementation of the same
// job on the same machine can avoid.
//
// It reads serf-hb's environment (SERF_HB_NODES_DIR, SERF_HB_OUTPUT,
// SERF_HB_RELOAD) and member lines on stdin. It is a measuring stick, not a
// handler: it trusts its input.
package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "least:", err)
		os.Exit(1)
	}
}

func run() error {
	nodes, out := os.Getenv("SERF_HB_NODES_DIR"), os.Getenv("SERF_HB_OUTPUT")
	lock, err := os.OpenFile(filepath.Join(nodes, ".lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return err
	}
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), "\t")
		addr, _, _ := strings.Cut(rest, "\t")
		if !ok || name == "" || name[0] == '.' || strings.Contains(name, "/") {
			continue
		}
		if err := writeAtomic(filepath.Join(nodes, name), []byte(name+" "+addr+"\n{\"role\":\"backend\"}\n")); err != nil {
			return err
		}
	}
	d, err := os.Open(nodes)
	if err != nil {
		return err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return err
	}
	sort.Strings(names)
	var b bytes.Buffer
	b.WriteString("backend nodes\n")
	buf := make([]byte, 4096)
	for _, n := range names {
		if strings.HasPrefix(n, ".") {
			continue
		}
		fd, err := syscall.Open(filepath.Join(nodes, n), syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		k, err := syscall.Read(fd, buf)
		syscall.Close(fd)
		if err != nil {
			return err
		}
		line, _, _ := strings.Cut(string(buf[:k]), "\n")
		name, addr, _ := strings.Cut(line, " ")
		fmt.Fprintf(&b, "    server %s %s:3000 check\n", name, addr)
	}
	if old, _ := os.ReadFile(out); bytes.Equal(old, b.Bytes()) {
		return nil
	}
	if err := writeAtomic(out, b.Bytes()); err != nil {
		return err
	}
	if r := os.Getenv("SERF_HB_RELOAD"); r != "" {
		if o, err := exec.Command(r).CombinedOutput(); err != nil {
			return fmt.Errorf("reload: %v: %s", err, o)
		}
	}
	return nil
}

// writeAtomic replaces p with data as serf-hb does: temp file, fsync,
// rename, fsync of the directory.
func writeAtomic(p string, data []byte) error {
	dir := filepath.Dir(p)
	tmp := filepath.Join(dir, "."+filepath.Base(p)+".least")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
