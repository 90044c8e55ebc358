package name

import "testing"

func TestValid(t *testing.T) {
	for _, tt := range []struct {
		s    string
		bad  int
		want bool
	}{
		{"web-1.example:80_x", -1, true},
		{"", -1, false},
		{"a b", 1, false},
		{"é", 0, false},
		{"web/1", 3, false},
		{"x;y", 1, false},
	} {
		if got := Valid(tt.s); got != tt.want {
			t.Errorf("Valid(%q) = %v, want %v", tt.s, got, tt.want)
		}
		if got := Bad(tt.s); got != tt.bad {
			t.Errorf("Bad(%q) = %d, want %d", tt.s, got, tt.bad)
		}
	}
}
