package harness

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Logs follows the log files of one directory, so that a failed step can
// show what each of them got since the step began (Mark) rather than
// everything since the start.
type Logs struct {
	Dir string
	// Noise, when set, matches lines left out of Since: lines every poll
	// adds (a serf agent logs each RPC client it accepts).
	Noise *regexp.Regexp
	marks map[string]int64
}

// tailBytes bounds what Since and Tail show of one file.
const tailBytes = 4 << 10

// Mark records the current size of every log file.
func (l *Logs) Mark() {
	if l.marks == nil {
		l.marks = map[string]int64{}
	}
	files, _ := filepath.Glob(filepath.Join(l.Dir, "*"))
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil {
			l.marks[f] = fi.Size()
		}
	}
}

// Since returns what every log file got since the last Mark (all of it for
// a file created since), the last 4 KiB of each, under a header naming it.
func (l *Logs) Since() string {
	var b strings.Builder
	files, _ := filepath.Glob(filepath.Join(l.Dir, "*"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if off := l.marks[f]; off <= int64(len(data)) {
			data = data[off:]
		}
		if l.Noise != nil {
			data = l.Noise.ReplaceAll(data, nil)
		}
		if len(data) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n----- %s (this step) -----\n%s", filepath.Base(f), lastBytes(data))
	}
	return b.String()
}

// Tail returns the last 4 KiB of a file without its noise, or why it
// cannot be read.
func (l *Logs) Tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if l.Noise != nil {
		b = l.Noise.ReplaceAll(b, nil)
	}
	return string(lastBytes(b))
}

// Tail returns the last 4 KiB of a file, or why it cannot be read.
func Tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	return string(lastBytes(b))
}

func lastBytes(b []byte) []byte {
	if len(b) > tailBytes {
		return append([]byte("...\n"), b[len(b)-tailBytes:]...)
	}
	return b
}
