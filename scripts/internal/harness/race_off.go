//go:build !race

package harness

// RaceEnabled reports whether this is a race build (go test -race).
const RaceEnabled = false
