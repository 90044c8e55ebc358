package haproxy

import (
	"reflect"
	"strings"
	"testing"
)

// stateReply is `show servers state b` from HAProxy 2.6.12 (trailing
// newlines trimmed, as Command returns it): a server of the file, down,
// and a dynamic one on IPv6, draining, weight 5.
const stateReply = `1
# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port
3 b 1 s1 127.0.21.2 0 0 3 3 50 8 2 0 6 0 0 0 - 9000 - 0 0 - - 0
3 b 2 n1 ::1 2 8 5 1 0 1 0 0 0 0 0 0 - 9002 - 0 0 - - 0`

func TestParseServersState(t *testing.T) {
	got, err := parseServersState(stateReply)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(stateReply, "\n")
	want := []liveServer{
		{Backend: "b", ID: 1, Name: "s1", Addr: "127.0.21.2", Port: 9000, Admin: 0, UWeight: 3, line: lines[2]},
		{Backend: "b", ID: 2, Name: "n1", Addr: "::1", Port: 9002, Admin: 8, UWeight: 5, line: lines[3]},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if got[0].pendingDeletion() || !got[1].pendingDeletion() {
		t.Error("pendingDeletion: want false for s1 (ready), true for n1 (draining)")
	}

	tests := []struct {
		name, reply, err string
		n                int
	}{
		{"empty backend", "1\n# be_id be_name srv_id srv_name srv_addr srv_admin_state srv_uweight srv_port", "", 0},
		{"columns moved and added", "1\n# srv_port be_name srv_id srv_name srv_addr srv_admin_state srv_uweight extra\n# a comment\n80 b 1 a 10.0.0.1 1 1 x\n\n", "", 1},
		{"no version", "# be_id be_name", "first line is not format version 1", 0},
		{"version 2", "2\n# be_id be_name", "first line is not format version 1", 0},
		{"no header", "1\n3 b 1 a", "second line is not a '# ' header", 0},
		{"column missing", "1\n# be_id be_name srv_id srv_name srv_addr srv_admin_state srv_uweight", "no column srv_port", 0},
		{"short line", stateReply + "\n3 b 7", "parse show servers state line 5", 0},
		{"not a number", strings.Replace(stateReply, " 9002 ", " x ", 1), "parse show servers state line 4", 0},
		{"an error reply", "Can't find backend.", "first line is not format version 1", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseServersState(tt.reply)
			if tt.err == "" {
				if err != nil || len(got) != tt.n {
					t.Errorf("= %+v, %v; want %d servers", got, err, tt.n)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("error %v, want %q", err, tt.err)
			}
		})
	}
}
