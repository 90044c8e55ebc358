// Package labtest runs the lab's migrated HAProxy image (examples/lab/ha)
// without Docker: the image's own s6 run scripts under a real s6-svscan,
// HAProxy in master-worker mode, the balancer's serf agent with serf-hb as
// its handler and the ported template, plus backends that are each a serf
// agent and an HTTP server, all on 127.0.23.0/24.
//
// The run scripts are the shipped files themselves (symlinked into the
// scan directory, never edited): they take every path and address from
// environment variables with the lab's values as defaults, and the test
// sets those variables the way s6-overlay v2 hands a container's
// environment to its services, through with-contenv and an envdir. It has
// tests only; see examples/lab/README.md.
package labtest
