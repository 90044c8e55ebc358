// Package nodestore keeps the registry of load-balanced nodes: a directory
// holding one file per node, named after it.
//
// Invariants:
//   - Callers hold the lock (Store.Lock) across every read-modify-write: a
//     List, the Puts and Removes decided from it, and whatever is built
//     from the result. Flags (Flag, SetFlag) are read and set under the
//     same lock. The lock is an flock, released by the kernel when its
//     holder dies.
//   - Node files are replaced atomically (temp file, its data made
//     durable, rename): a reader sees the old or the new file, never a
//     part, before and after a crash. A batch's data is flushed once, by
//     one syncfs(2), before any of its renames (batch.go). The directory's
//     fsync, which makes renames and removals survive a crash, is Sync's:
//     one for all of an event's changes.
//   - Names starting with a dot are reserved for the store itself (the lock
//     file, which also keeps the flags; the index; temp files) and are
//     ignored by List. Every other entry is meant to be a node file; List
//     returns those that are not (a stray README, an editor's "web1~", a
//     directory) apart, as *EntryError, and never fails for them.
//   - A node name can never address a path outside the directory: Put and
//     Remove refuse any name that ValidName rejects.
//   - The index (index.go) is only a cache of node files' bytes, written
//     under the lock: a torn or missing index costs time, never a node.
//
// A node file's first line is "NAME ADDR", the layout the lab's shell scripts
// wrote, so their registries are read as they are. serf-hb adds a second line
// with the role and tags as JSON.
package nodestore
