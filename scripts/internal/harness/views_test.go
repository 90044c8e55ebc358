package harness

import "testing"

func TestServersDiff(t *testing.T) {
	got := Servers{"a": "1.1.1.1:80", "b": "2.2.2.2:80", "c": "3.3.3.3:80"}
	want := Servers{"a": "1.1.1.1:80", "b": "2.2.2.2:81", "d": "4.4.4.4:80"}
	if d := got.Diff(want); d != "+c -d b@2.2.2.2:80 (want 2.2.2.2:81)" {
		t.Errorf("Diff = %q", d)
	}
	if got.Equal(want) || !got.Equal(got) || !(Servers{"a": "1.1.1.1:80"}).SubsetOf(got) || got.SubsetOf(want) {
		t.Error("Equal or SubsetOf wrong")
	}
	if s := want.String(); s != "{a@1.1.1.1:80 b@2.2.2.2:81 d@4.4.4.4:80}" {
		t.Errorf("String = %q", s)
	}
}

func TestParseServersState(t *testing.T) {
	// HAProxy 2.6's answer: a version line, the header, one line a server.
	out := "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port\n" +
		"3 nodes 1 web1 127.0.1.11 2 0 1 1 5 6 3 4 6 0 0 0 - 3000 - 0 0 - - 0\n" +
		"3 nodes 2 web2 127.0.1.12 2 1 1 1 5 6 3 4 6 0 0 0 - 3001 - 0 0 - - 0\n"
	st, err := parseServersState(out)
	if err != nil {
		t.Fatal(err)
	}
	conf, routed := Configured(st)
	if conf.String() != "{web1@127.0.1.11:3000 web2@127.0.1.12:3001}" || routed.String() != "{web1@127.0.1.11:3000}" || !st["web2"].Maint() {
		t.Errorf("configured %v routed %v state %v", conf, routed, st)
	}
}

func TestQuote(t *testing.T) {
	if q := Quote(`it's`); q != `'it'\''s'` {
		t.Errorf("Quote = %s", q)
	}
}

func TestBackendServers(t *testing.T) {
	cfg := []byte(`global
    maxconn 10

backend other
    server x 1.1.1.1:1 weight 9

backend nodes
    balance roundrobin
    default-server inter 1s weight 5
    server web1 127.0.0.1:3000 check weight 2
    server web2 127.0.0.2:3000 check
# a comment
listen stats
    server y 2.2.2.2:2
`)
	got, err := BackendServers(cfg, "nodes")
	if err != nil || len(got) != 2 || got[0] != (ConfigServer{"web1", "127.0.0.1:3000", 2}) || got[1] != (ConfigServer{"web2", "127.0.0.2:3000", 5}) {
		t.Errorf("BackendServers = %+v, %v", got, err)
	}
	if _, err := BackendServers(cfg, "absent"); err == nil {
		t.Error("no error for a missing backend")
	}
}
