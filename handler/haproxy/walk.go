package haproxy

// inOrder reports whether the names of xs are in strictly ascending
// order, as serf-hb's rendering of a sorted registry gives a backend's
// servers: no name is there twice, and two such lists compare in one walk
// (walk), with no index of 10,000 names to build (~4 ms a run).
func inOrder[T any](xs []T, name func(*T) string) bool {
	for i := 1; i < len(xs); i++ {
		if name(&xs[i-1]) >= name(&xs[i]) {
			return false
		}
	}
	return true
}

// walk goes through two lists of no and nn entries in ascending name
// order (inOrder) at once, cmp comparing the name of o's entry i with that
// of n's entry j: it calls gone for an entry whose name is only in o,
// added for one only in n and both for a name in both, in n's order; the
// first error from both ends it.
func walk(no, nn int, cmp func(i, j int) int, gone, added func(i int), both func(i, j int) error) error {
	i, j := 0, 0
	for i < no || j < nn {
		c := 0
		switch {
		case j == nn:
			c = -1
		case i == no:
			c = 1
		default:
			c = cmp(i, j)
		}
		switch {
		case c < 0:
			gone(i)
			i++
		case c > 0:
			added(j)
			j++
		default:
			if err := both(i, j); err != nil {
				return err
			}
			i, j = i+1, j+1
		}
	}
	return nil
}
