package master

import (
	"context"
	"syscall"
	"testing"
	"time"
)

// BenchmarkReload measures, against a real HAProxy 2.6, what verification
// costs: one show proc, and verified reloads through the master CLI and
// through a signal to the master (what s6-svc -2 makes s6-supervise send).
// wait-ms is Result.Wait, the time from the trigger's return to the
// verdict: what a caller waits beyond a fire-and-forget reload.
func BenchmarkReload(b *testing.B) {
	l := newLab(b)
	l.install(b, "one", "")
	master := l.start(b)
	c := &Client{Addr: l.sock, Timeout: 5 * time.Second}
	ctx := context.Background()
	b.Run("show-proc", func(b *testing.B) {
		for b.Loop() {
			if _, err := c.ShowProc(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, tr := range []struct {
		name    string
		trigger func(context.Context) error
	}{
		{"reload-master-cli", nil},
		{"reload-sigusr2", func(context.Context) error { return master.Process.Signal(syscall.SIGUSR2) }},
	} {
		b.Run(tr.name, func(b *testing.B) {
			var wait time.Duration
			for b.Loop() {
				res, err := c.Reload(ctx, tr.trigger)
				if err != nil {
					b.Fatal(err)
				}
				wait += res.Wait
			}
			b.ReportMetric(float64(wait.Microseconds())/1000/float64(b.N), "wait-ms/op")
		})
	}
}
