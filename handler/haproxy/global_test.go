package haproxy

import (
	"slices"
	"testing"
)

func TestStateFile(t *testing.T) {
	for _, tt := range []struct{ cfg, want string }{
		{"global\n    server-state-file /run/h/state\n", "/run/h/state"},
		{"global\n    server-state-base /run/h\n    server-state-file state\n", "/run/h/state"},
		{"global\n    server-state-file state\n", "state"}, // relative to HAProxy's directory: the caller decides
		{"global\n    server-state-base /run/h\n    server-state-file /abs\n", "/abs"},
		{"global\n    maxconn 10\n", ""},
	} {
		if got := StateFile([]byte(tt.cfg)); got != tt.want {
			t.Errorf("StateFile(%q) = %q, want %q", tt.cfg, got, tt.want)
		}
	}
}

func TestStatsSockets(t *testing.T) {
	cfg := "global\n    stats socket /run/admin.sock mode 600 level admin\n    stats socket ipv4@127.0.0.1:9999 level admin\n    stats timeout 2m\n"
	if got, want := StatsSockets([]byte(cfg)), []string{"/run/admin.sock", "ipv4@127.0.0.1:9999"}; !slices.Equal(got, want) {
		t.Errorf("StatsSockets = %q, want %q", got, want)
	}
}
