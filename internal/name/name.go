// Package name holds HAProxy's rule for the names of proxies and servers,
// which the registry (a node's name becomes a server's), the renderer (a
// role becomes a backend's) and the runtime API all apply: one rule, one
// place.
package name

// Char reports whether HAProxy accepts c in a name: A-Z a-z 0-9 _ . : -
// (its invalid_char test).
func Char(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '_' || c == '.' || c == ':' || c == '-'
}

// Bad returns the index of the first byte of s that HAProxy refuses in a
// name, or -1 when there is none.
func Bad(s string) int {
	for i := 0; i < len(s); i++ {
		if !Char(s[i]) {
			return i
		}
	}
	return -1
}

// Valid reports whether HAProxy accepts s as a name: not empty, and every
// byte one of A-Z a-z 0-9 _ . : -.
func Valid(s string) bool { return s != "" && Bad(s) < 0 }
