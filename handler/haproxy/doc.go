// Package haproxy applies membership changes to a running HAProxy 2.6
// through its runtime API (the stats socket, at level admin) instead of
// reloading it.
//
// Its invariant: a change is made live only when the result is what a
// reload of the new file would give. Diff refuses, with a *NotLiveError
// saying why, any pair of files whose difference is more than server lines
// HAProxy can add, remove, readdress and reweight at runtime; every
// command's reply is checked against the one that means success, and
// anything else comes back as an error carrying HAProxy's words, for the
// caller to fall back to a reload. Nothing here writes haproxy.cfg or logs.
//
// A caller installs the new file either way (servers added at runtime
// vanish at the next reload unless the file has them), then:
//
//	plan, err := haproxy.Diff(old, new) // a *NotLiveError: reload
//	applied, err := c.Apply(ctx, plan, opts) // an error: reload
//	pending, err := c.Verify(ctx, new, plan.Backends()) // an error: reload
//
// and, on later runs, c.Delete(ctx, retired) to delete the servers a
// removal retired, where HAProxy says that is safe. A joining member's
// servers may go first, before the new file exists: Adds takes them from
// the template rendered over that member alone, Apply sends them, and
// Settle later takes them out of the whole file's plan, or says the file
// defines them otherwise (reload). Their backends may be read back ahead
// (ReadAhead) while the new file is made; when its plan holds nothing
// more, Verify compares the file with that Reading.
package haproxy
