package nodestore

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/google/renameio/v2"
)

// Put registers n, replacing any earlier entry of the same name. It reports
// whether the file changed (an identical entry is left untouched) and
// whether there was an entry before. The change is durable after Sync.
func (s *Store) Put(n Node) (changed, existed bool, err error) {
	p, err := s.path(n.Name)
	if err != nil {
		return false, false, err
	}
	if !n.Addr.IsValid() {
		return false, false, fmt.Errorf("node %q: no address", n.Name)
	}
	if n.Addr.Zone() != "" {
		return false, false, fmt.Errorf("node %q: address %s has a zone", n.Name, n.Addr)
	}
	data, err := encode(n)
	if err != nil {
		return false, false, fmt.Errorf("encode node %q: %v", n.Name, err)
	}
	old, _, err := readFile(-1, n.Name, p, nil)
	existed = err == nil
	if existed && bytes.Equal(old, data) {
		return false, true, nil
	}
	delete(s.fresh, n.Name)
	if err := writeAtomic(s.dir, p, data); err != nil {
		return false, existed, err
	}
	s.unsynced.Store(true)
	return true, existed, nil
}

// PutResult is what Put reported for one node of PutAll.
type PutResult struct {
	Changed, Existed bool
	Err              error
}

// PutAll puts every node as Put would, one after the other (a name given
// twice: the last one wins), and returns each one's result in order. Its
// changes are durable after Sync, as Put's are, but the node files' own
// flush is paid once for the batch rather than once per file (batch.go):
// an event can carry every member of the cluster (Serf sends all it
// learns at start-up as one member-join).
func (s *Store) PutAll(nodes []Node) []PutResult {
	b := s.stage(nodes, flushWith == flushOneByOne || flushWith == flushAuto && len(nodes) < batchSyncMin)
	return b.Commit()
}

// writeAtomic replaces p with data: a temp file in dir, fsync, rename. The
// rename survives a crash once dir is fsynced (Store.Sync).
func writeAtomic(dir, p string, data []byte) error {
	f, err := renameio.NewPendingFile(p, renameio.WithTempDir(dir), renameio.WithPermissions(0o644))
	if err != nil {
		return err
	}
	defer f.Cleanup()
	if _, err := f.Write(data); err != nil {
		return err
	}
	return f.CloseAtomicallyReplace()
}

// isTemp reports whether name has the shape of the temp file writeAtomic
// stages a node file in (renameio's: "." + name + random digits).
func isTemp(name string) bool {
	if len(name) < 3 || name[0] != '.' {
		return false
	}
	base := strings.TrimRight(name[1:], "0123456789")
	return len(base) < len(name)-1 && ValidName(base) == nil
}
