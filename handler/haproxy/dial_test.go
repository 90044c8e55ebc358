package haproxy

import "testing"

func TestNetwork(t *testing.T) {
	tests := []struct{ addr, network, address string }{
		{"/run/haproxy-master.sock", "unix", "/run/haproxy-master.sock"},
		{"m.sock", "unix", "m.sock"},
		{"unix@/run/m.sock", "unix", "/run/m.sock"},
		{"127.0.0.1:9999", "tcp", "127.0.0.1:9999"},
		{"[::1]:9999", "tcp", "[::1]:9999"},
		{"ipv4@127.0.0.1:9999", "tcp4", "127.0.0.1:9999"},
		{"ipv6@[::1]:9999", "tcp6", "[::1]:9999"},
		{"localhost:9999", "tcp", "localhost:9999"},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			n, a := Network(tt.addr)
			if n != tt.network || a != tt.address {
				t.Errorf("Network = %s %s; want %s %s", n, a, tt.network, tt.address)
			}
		})
	}
}
