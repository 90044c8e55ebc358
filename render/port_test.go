package render

import (
	"strconv"
	"testing"
)

// TestPort checks port against its definition: v is the canonical decimal
// spelling of a number from 1 to 65535.
func TestPort(t *testing.T) {
	cases := []string{"", "0", "1", "80", "099", "3000", "+3000", "-1", " 80", "80 ", "8o", "65535",
		"65536", "99999", "0x50", "1_000", "١٢", "00080", "9223372036854775808"}
	for i := -2; i <= 70000; i += 7 {
		cases = append(cases, strconv.Itoa(i))
	}
	for _, v := range cases {
		want := ""
		if n, err := strconv.Atoi(v); err == nil && n >= 1 && n <= 65535 && strconv.Itoa(n) == v {
			want = v
		}
		if got := Port(v); got != want {
			t.Errorf("Port(%q) = %q, want %q", v, got, want)
		}
	}
}
