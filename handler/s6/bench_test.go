package s6

import (
	"os/exec"
	"testing"
)

// BenchmarkSend compares Send with what it replaces, an exec of s6-svc,
// both signalling a service under a real s6-supervise.
func BenchmarkSend(b *testing.B) {
	svc, _ := startScan(b)
	s := Signal{Cmd: 'h', Dir: svc}
	b.Run("in-process", func(b *testing.B) {
		for b.Loop() {
			if err := s.Send(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("exec-s6-svc", func(b *testing.B) {
		for b.Loop() {
			if out, err := exec.Command("s6-svc", "-h", svc).CombinedOutput(); err != nil {
				b.Fatalf("s6-svc -h %s: %v: %s", svc, err, out)
			}
		}
	})
}
