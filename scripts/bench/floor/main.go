// Command floor does nothing. scripts/bench.sh builds it as a static binary
// (CGO_ENABLED=0) and times its exec next to serf-hb's: the cost of starting
// any Go process on the machine, the floor serf-hb's fixed cost is compared
// with.
package main

func main() {}
