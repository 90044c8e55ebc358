package harness

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestLogsSince(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log")
	appendTo := func(p, s string) {
		t.Helper()
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString(s); err != nil {
			t.Fatal(err)
		}
	}
	appendTo(a, "before the step\n")
	l := &Logs{Dir: dir, Noise: regexp.MustCompile(`(?m)^noise\n`)}
	l.Mark()
	appendTo(a, "in the step\nnoise\n")
	appendTo(b, "a new file\n")
	got := l.Since()
	for _, want := range []string{"----- a.log (this step) -----\nin the step\n", "----- b.log (this step) -----\na new file\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("Since() lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "before the step") || strings.Contains(got, "noise") {
		t.Errorf("Since() shows what it should not:\n%s", got)
	}
	if got := l.Tail(a); got != "before the step\nin the step\n" {
		t.Errorf("Tail(a.log) = %q, want the whole file without its noise", got)
	}
	l.Mark()
	if got := l.Since(); got != "" {
		t.Errorf("Since() right after Mark = %q", got)
	}
	appendTo(b, strings.Repeat("x", 10<<10))
	if got := l.Since(); len(got) > 5<<10 || !strings.Contains(got, "...\nxxx") {
		t.Errorf("Since() of a long log is %d bytes, not its tail", len(got))
	}
}
