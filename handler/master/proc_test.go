package master

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseProcs(t *testing.T) {
	v := "2.6.12-1+deb12u4"
	tests := []struct {
		name  string
		input string // or the file testdata/showproc/NAME.txt
		want  Procs
		err   string
	}{
		{name: "26-start", want: Procs{
			Master:  Proc{PID: 7822, Uptime: time.Second, Version: v},
			Workers: []Proc{{PID: 7835, Uptime: time.Second, Version: v}},
		}},
		{name: "26-old-workers", want: Procs{
			Master:     Proc{PID: 7822, Reloads: 2, Uptime: 9*time.Minute + 44*time.Second, Version: v},
			Workers:    []Proc{{PID: 12050, Version: v}},
			OldWorkers: []Proc{{PID: 7835, Reloads: 2, Uptime: 9*time.Minute + 44*time.Second, Version: v}},
		}},
		{name: "26-failed", want: Procs{
			Master:  Proc{PID: 13520, Reloads: 1, Uptime: 4 * time.Second, Version: v},
			Failed:  1,
			Workers: []Proc{{PID: 13596, Reloads: 1, Uptime: 4 * time.Second, Version: v}},
		}},
		{name: "stats-socket", err: `not the answer to show proc (it begins "Unknown command`},
		{
			// The format of show proc debug and of programs, from
			// mworker.c of HAProxy 3.x: not captured, the installed 2.6
			// has neither.
			name: "debug columns and programs",
			input: "#<PID>          <type>          <reloads>       <uptime>        <version>      \t\t <ipc_fd[0]>     <ipc_fd[1]>\n" +
				"100             master          7 [failed: 2]   1d02h03m04s     3.1.0           \t\t -1              5\n" +
				"# workers\n" +
				"200             worker          0               0d00h00m09s     3.1.0           \t\t 6               -1\n" +
				"# programs\n" +
				"300             dataplaneapi    1               0d00h01m00s     -\n",
			want: Procs{
				Master:  Proc{PID: 100, Reloads: 7, Uptime: 26*time.Hour + 3*time.Minute + 4*time.Second, Version: "3.1.0"},
				Failed:  2,
				Workers: []Proc{{PID: 200, Uptime: 9 * time.Second, Version: "3.1.0"}},
			},
		},
		{name: "no worker", input: "#<PID> <type>\n1 master 0 [failed: 0] 0d00h00m00s 2.6\n# workers\n", want: Procs{
			Master: Proc{PID: 1, Version: "2.6"},
		}},
		{name: "empty", input: "", err: "no master line"},
		{name: "2.4 has no failed count", input: "#<PID>          <type>          <relative PID>  <reloads>       <uptime>        <version>\n7822            master          0               1               0d00h00m01s     2.4.22\n", err: "haproxy older than 2.5"},
		{name: "bad PID", input: "#<PID>\n0 master 0 [failed: 0] 0d00h00m00s 2.6\n", err: `PID "0"`},
		{name: "bad worker", input: "#<PID>\n1 master 0 [failed: 0] 0d00h00m00s 2.6\n# workers\n2 worker x 0d00h00m00s 2.6\n", err: `line 4: count "x"`},
		{name: "bad uptime", input: "#<PID>\n1 master 0 [failed: 0] 0d00h00m 2.6\n", err: `uptime "0d00h00m"`},
		{name: "uptime out of range", input: "#<PID>\n1 master 0 [failed: 0] 2147483647d00h00m00s 2.6\n", err: `uptime "2147483647d00h00m00s"`},
		// 106,752 days is past a Duration's ~292 years; a million days
		// once passed the per-unit bound and wrapped around (fuzzing).
		{name: "uptime past a Duration", input: "#<PID>\n1 master 0 [failed: 0] 106752d00h00m00s 2.6\n", err: `uptime "106752d00h00m00s"`},
		{name: "negative failed", input: "#<PID>\n1 master 0 [failed: -1] 0d00h00m00s 2.6\n", err: `count "-1"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			input := tt.input
			if input == "" && tt.name != "empty" {
				b, err := os.ReadFile(filepath.Join("testdata", "showproc", tt.name+".txt"))
				if err != nil {
					t.Fatal(err)
				}
				input = string(b)
			}
			got, err := parseProcs(input)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !errors.Is(err, errBadAnswer) {
					t.Fatalf("parseProcs = %+v, %v; want an error saying %q", got, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseProcs =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

// FuzzParseProcs checks that parseProcs never panics and that what it
// accepts survives being rendered the way HAProxy prints it and parsed
// again.
func FuzzParseProcs(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "showproc", "*.txt"))
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Add("#<PID>\n1 master 0 [failed: 0] 0d00h00m00s 2.6\n# workers\n2 worker 0 0d00h00m00s 2.6\n# old workers\n3 worker 1 0d00h00m00s 2.6\n")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parseProcs(s)
		if err != nil {
			return
		}
		if p.Master.PID <= 0 || p.Failed < 0 {
			t.Fatalf("parseProcs(%q) = %+v", s, p)
		}
		again, err := parseProcs(render(p))
		if err != nil || !reflect.DeepEqual(again, p) {
			t.Fatalf("parseProcs(%q) = %+v; rendered and parsed again: %+v, %v", s, p, again, err)
		}
	})
}
