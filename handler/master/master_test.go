package master

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/serf-hb/serf-hb/internal/haproxytest"
)

// TestSocketErrors: a master CLI that is missing, refuses or never answers
// gives an error within the timeout that names the socket and hints at
// haproxy's -S.
func TestSocketErrors(t *testing.T) {
	const timeout = 300 * time.Millisecond
	tests := []struct {
		name string
		addr func(t *testing.T) string
		want string
	}{
		{"missing socket", func(t *testing.T) string {
			return filepath.Join(t.TempDir(), "m.sock")
		}, "no such file or directory"},
		{"stale socket file", func(t *testing.T) string {
			return haproxytest.Refusing(t, filepath.Join(haproxytest.ShortDir(t), "m.sock"))
		}, "nothing listens there"},
		{"TCP port refusing", func(t *testing.T) string {
			return freePort(t, "127.0.22.3")
		}, "nothing listens there"},
		{"unix socket never answering", func(t *testing.T) string {
			return haproxytest.Silent(t, "unix", filepath.Join(haproxytest.ShortDir(t), "m.sock"))
		}, "no answer within"},
		{"TCP port never answering", func(t *testing.T) string {
			return haproxytest.Silent(t, "tcp", "127.0.22.3:0")
		}, "no answer within"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Client{Addr: tt.addr(t), Timeout: timeout}
			for _, call := range []struct {
				name string
				do   func() error
			}{
				{"ShowProc", func() error { _, err := c.ShowProc(context.Background()); return err }},
				{"Reload", func() error { _, err := c.Reload(context.Background(), nil); return err }},
			} {
				start := time.Now()
				err := call.do()
				took := time.Since(start)
				var se *SocketError
				if !errors.As(err, &se) {
					t.Fatalf("%s = %v; want a *SocketError", call.name, err)
				}
				for _, s := range []string{c.Addr, tt.want, "hint: ", "-S " + c.Addr} {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("%s: the error does not say %q: %v", call.name, s, err)
					}
				}
				// Bounded, not a speed target: a generous margin over the timeout.
				if took > timeout+2*time.Second {
					t.Errorf("%s took %v with a timeout of %v", call.name, took, timeout)
				}
			}
		})
	}
}
