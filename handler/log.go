package handler

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"unicode/utf8"
)

// Output rules, in one place:
//   - stdout carries only what a command was asked for: the rendered file of
//     render --dry-run, the diff, the node table or JSON of nodes. The event
//     handler prints nothing on stdout (for a Serf query it would become the
//     response).
//   - stderr gets the run's log lines in slog's text format: a WARN line for
//     each rejected stdin line, then exactly one summary line per run, with
//     the cause of a failure as its last attribute, err=... . Serf keeps
//     only the last 8 KiB of a handler's output and shows it only at DEBUG
//     level, so lines stay short.
//   - with --log-file, the same lines are appended to that file too.
//   - package main prints an error itself only when no log line has
//     reported it (usage and configuration errors).

// newLogger returns a logger writing to stderr and, when logFile is set,
// appending to logFile.
func newLogger(stderr io.Writer, logFile string) (*slog.Logger, func(), error) {
	w, closeFn := stderr, func() {}
	if logFile != "" {
		f, err := os.OpenFile(logFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return nil, nil, fmt.Errorf("open log file: %w", err)
		}
		w, closeFn = io.MultiWriter(stderr, f), func() { f.Close() }
	}
	h := slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo})
	return slog.New(h), closeFn, nil
}

// names formats a list of node names for a log line, eliding the middle
// of long lists.
func names(list []string) string {
	list = slices.Sorted(slices.Values(list))
	const max = 8
	if len(list) <= max {
		return strings.Join(list, ",")
	}
	return strings.Join(list[:max], ",") + fmt.Sprintf(",...(+%d)", len(list)-max)
}

func logAt(log *slog.Logger, err error) slog.Level {
	if err != nil {
		return slog.LevelError
	}
	return slog.LevelInfo
}

// shorten cuts a node name for a log line: a hostile name can be 64 KiB,
// and Serf keeps only the last 8 KiB of a handler's output.
func shorten(name string) string {
	const max = 80
	if len(name) <= max {
		return name
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(name[cut]) {
		cut--
	}
	return fmt.Sprintf("%s...(%d bytes)", name[:cut], len(name))
}
