package master

import (
	"reflect"
	"strings"
	"testing"
)

// stderr26 is HAProxy 2.6's stderr across a good and a bad reload
// (captured, master 7822, workers 7835 then 12050).
const stderr26 = `[NOTICE]   (7822) : New worker (7835) forked
[NOTICE]   (7822) : Loading success.
[NOTICE]   (7822) : Reloading HAProxy
[NOTICE]   (7822) : haproxy version is 2.6.12-1+deb12u4
[NOTICE]   (7822) : New worker (12050) forked
[NOTICE]   (7822) : Loading success.
[NOTICE]   (7822) : Reloading HAProxy
[WARNING]  (12050) : Paused frontend fe.
[NOTICE]   (7822) : haproxy version is 2.6.12-1+deb12u4
[NOTICE]   (7822) : path to executable is /usr/sbin/haproxy
[ALERT]    (7822) : Binding [cur.cfg:10] for frontend fe: cannot bind socket (Cannot assign requested address) for [192.0.2.77:80]
[ALERT]    (7822) : [haproxy.main()] Some protocols failed to start their listeners! Exiting.
[WARNING]  (7822) : Loading failure!
[WARNING]  (12050) : Resumed frontend fe.
`

func TestReloadMessages(t *testing.T) {
	lastReload := []string{
		"[NOTICE]   (7822) : haproxy version is 2.6.12-1+deb12u4",
		"[NOTICE]   (7822) : path to executable is /usr/sbin/haproxy",
		"[ALERT]    (7822) : Binding [cur.cfg:10] for frontend fe: cannot bind socket (Cannot assign requested address) for [192.0.2.77:80]",
		"[ALERT]    (7822) : [haproxy.main()] Some protocols failed to start their listeners! Exiting.",
		"[WARNING]  (7822) : Loading failure!",
	}
	var tai strings.Builder
	for _, l := range strings.SplitAfter(stderr26, "\n") {
		if l != "" {
			tai.WriteString("@400000006565a3b21c9a5f2c " + l)
		}
	}
	tests := []struct {
		name     string
		stderr   string
		master   int
		want     []string
		complete bool
	}{
		{"the last reload, the master's lines only", stderr26, 7822, lastReload, true},
		{"s6-log timestamps cut", tai.String(), 7822, lastReload, true},
		{"still being written", strings.Split(stderr26, "[WARNING]  (7822) : Loading")[0], 7822, lastReload[:4], false},
		{"another master", stderr26, 7823, nil, false},
		{"no reload yet", "[NOTICE]   (7822) : New worker (7835) forked\n", 7822, nil, false},
		{"CRLF", strings.ReplaceAll(stderr26, "\n", "\r\n"), 7822, lastReload, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, complete := reloadMessages([]byte(tt.stderr), tt.master)
			if !reflect.DeepEqual(got, tt.want) || complete != tt.complete {
				t.Errorf("reloadMessages = %q, %v; want %q, %v", got, complete, tt.want, tt.complete)
			}
		})
	}
}

func TestParseReloadAnswer(t *testing.T) {
	tests := []struct {
		name      string
		answer    string
		ok, known bool
		wantLog   []string
	}{
		{"2.6 answers nothing", "", false, false, nil},
		{"success with logs", "Success=1\n--\n[NOTICE]   (1) : Loading success.\n", true, true, []string{"[NOTICE]   (1) : Loading success."}},
		{"failure with logs", "Success=0\n--\n[ALERT]    (1) : x\n\n[WARNING]  (1) : Loading failure!\n", false, true, []string{"[ALERT]    (1) : x", "[WARNING]  (1) : Loading failure!"}},
		{"failure without logs", "Success=0\n", false, true, nil},
		{"CRLF", "Success=1\r\n--\r\nline\r\n", true, true, []string{"line"}},
		{"2.7-dev's older answer", "Loading success.\n", false, false, nil},
		{"something else", "Unknown command\n", false, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, log, known := parseReloadAnswer([]byte(tt.answer))
			if ok != tt.ok || known != tt.known || !reflect.DeepEqual(log, tt.wantLog) {
				t.Errorf("parseReloadAnswer = %v, %q, %v; want %v, %q, %v", ok, log, known, tt.ok, tt.wantLog, tt.known)
			}
		})
	}
}

// FuzzReloadOutput feeds HAProxy's other outputs, the reload answer and
// stderr, to their parsers: no panic, and only the master's lines.
func FuzzReloadOutput(f *testing.F) {
	f.Add(stderr26)
	f.Add("Success=0\n--\n[ALERT]    (7822) : x\n")
	f.Fuzz(func(t *testing.T, s string) {
		parseReloadAnswer([]byte(s))
		log, _ := reloadMessages([]byte(s), 7822)
		for _, l := range log {
			if !strings.Contains(l, "(7822) :") {
				t.Fatalf("reloadMessages(%q) kept %q", s, l)
			}
		}
	})
}
