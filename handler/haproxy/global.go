package haproxy

// Settings of a config's global section that serf-hb reads without
// parsing the whole file: where HAProxy keeps its server states, and the
// stats sockets it declares.

import (
	"bufio"
	"bytes"
	"path/filepath"
	"strings"
)

// StateFile returns the server-state-file a config names (joined to its
// server-state-base), or "".
func StateFile(cfg []byte) string {
	var file, base string
	sc := bufio.NewScanner(bytes.NewReader(cfg))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == "server-state-file" {
			file = f[1]
		}
		if len(f) == 2 && f[0] == "server-state-base" {
			base = f[1]
		}
	}
	if file == "" || filepath.IsAbs(file) || base == "" {
		return file
	}
	return filepath.Join(base, file)
}

// StatsSockets returns the addresses of a config's "stats socket" lines.
func StatsSockets(cfg []byte) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(cfg))
	for sc.Scan() {
		// Run on both files every run: only lines that can be one are
		// split (10,000 server lines would cost a copy and a split each).
		if !bytes.Contains(sc.Bytes(), []byte("stats")) {
			continue
		}
		f := strings.Fields(sc.Text())
		if len(f) >= 3 && f[0] == "stats" && f[1] == "socket" {
			out = append(out, f[2])
		}
	}
	return out
}
