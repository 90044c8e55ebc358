package handler

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

// TestReportLine: the summary line says what is known and nothing else:
// no nodes count when the registry was never listed (issue 13, bug 6), the
// cause of a failure last, and the exit status follows from the report.
func TestReportLine(t *testing.T) {
	for _, tt := range []struct {
		name string
		rep  func(*report)
		want string
		code int
	}{
		{"listed", func(r *report) { r.Applied, r.Nodes, r.Result = true, 3, resReloaded },
			`msg=member-join event=member-join lines=0 ignored=0 added="" updated="" removed="" nodes=3 result=reloaded took=1ms`, ExitOK},
		{"list failed", func(r *report) {
			r.Applied, r.Result, r.Err = true, resFailed, errors.New("list registry /nodes: boom")
		}, `added="" updated="" removed="" result=failed took=1ms err="list registry /nodes: boom"`, ExitFailure},
		{"rejected lines", func(r *report) {
			r.Lines, r.Nodes, r.Result = 2, 1, resUnchanged
			r.Rejected = []rejection{{Line: 2, Name: "x", Err: errors.New("bad")}}
		}, `lines=2 ignored=0 rejected=1 nodes=1 result=unchanged took=1ms err="1 line(s) rejected; the others were applied"`, ExitRejected},
		{"stray entry", func(r *report) {
			r.Nodes, r.Result = 1, resUnchanged
			r.Bad = []error{errors.New("registry entry /nodes/README: first line")}
		}, `err="1 registry entr(ies) skipped; the others were applied"`, ExitRejected},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newReport("member-join")
			r.Lines = 0
			r.Took = 1e6
			tt.rep(r)
			var b bytes.Buffer
			r.log(slog.New(slog.NewTextHandler(&b, nil)))
			lines := strings.Split(strings.TrimSpace(b.String()), "\n")
			if !strings.Contains(lines[len(lines)-1], tt.want) {
				t.Errorf("summary line\n%s\nlacks\n%s", lines[len(lines)-1], tt.want)
			}
			if tt.name == "list failed" && strings.Contains(b.String(), "nodes=") {
				t.Errorf("a registry never listed is reported as nodes=...: %s", b.String())
			}
			if _, code := r.status(); code != tt.code {
				t.Errorf("exit status %d, want %d", code, tt.code)
			}
		})
	}
}
