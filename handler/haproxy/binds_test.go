package haproxy

import (
	"strings"
	"testing"
)

func TestForeignBinds(t *testing.T) {
	cfg := `frontend a
    bind *:80
    bind :8080
    bind 127.0.0.1:8081
    bind 192.0.2.77:80
    bind ipv4@192.0.2.78:81-90 ssl
    bind 127.0.0.1:9000,192.0.2.79:9001
    bind 192.0.2.80:80 transparent
    bind unix@/run/x.sock
    bind /run/y.sock
    bind [::1]:80
    bind [2001:db8::1]:80
    bind fd@${FD}
backend b
    server bind 192.0.2.81:80
`
	got := strings.Join(ForeignBinds([]byte(cfg)), "\n")
	want := strings.Join([]string{
		"line 5: bind 192.0.2.77:80: 192.0.2.77 is not an address of this host",
		"line 6: bind ipv4@192.0.2.78:81-90: 192.0.2.78 is not an address of this host",
		"line 7: bind 127.0.0.1:9000,192.0.2.79:9001: 192.0.2.79 is not an address of this host",
		"line 12: bind [2001:db8::1]:80: 2001:db8::1 is not an address of this host",
	}, "\n")
	if got != want {
		t.Errorf("ForeignBinds =\n%s\nwant\n%s", got, want)
	}
}
