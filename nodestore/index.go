package nodestore

// The index is a cache of the node files' bytes, kept in the registry as
// ".index", so that List stats each node file instead of opening and
// reading it: with thousands of nodes, reading the files was most of an
// event's run time (docs/performance.md).
//
// It is only a cache; the node files stay the registry:
//   - An entry is used only while its node file's inode, size, mtime and
//     ctime are what they were when the entry was made, and the file is read
//     again otherwise.
//   - An entry is made only for a file whose ctime was at least racyMargin
//     old when it was stat'ed. A file changed again within one tick of the
//     file system's clock would keep its ctime, and would look unchanged to
//     an entry made in between (git's "racily clean" problem). A file just
//     written therefore stays out of the index until a later List.
//   - It is written only under the lock, in place and without fsync. A torn,
//     truncated or foreign index fails its checksum (CRC-32, IEEE: its
//     tables cost a tenth of Castagnoli's to build, which every run would
//     pay) or its parse, and List then reads every node file, as it does
//     without an index.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"sort"
	"time"
)

const (
	indexName = ".index"
	// indexMagic starts every index; its last byte is the format version.
	indexMagic = "serf-hb index\x00\x01"
	// racyMargin is how old a file's ctime must be for it to be cached:
	// above the timestamp granularity of the file systems a registry lives
	// on (nanoseconds to a clock tick on ext4, XFS, btrfs, tmpfs and NFS;
	// not FAT's two seconds, which is no place for a registry).
	racyMargin = time.Second
	// maxIndexSize bounds the index read: 10,000 nodes with full Serf tags
	// take about 6 MB.
	maxIndexSize = 64 << 20
)

// fileKey identifies one version of a node file.
type fileKey struct {
	ino          uint64
	size         int64
	mtime, ctime int64 // nanoseconds since the epoch
}

// indexEntry is a node file's bytes as of key.
type indexEntry struct {
	key  fileKey
	data []byte
}

// indexRecord is one entry of the index, named.
type indexRecord struct {
	name []byte // aliases the index's bytes
	indexEntry
}

// readIndex returns the index's records, sorted by name, or nil when there
// is no usable index.
func (s *Store) readIndex() []indexRecord {
	b, err := os.ReadFile(filepath.Join(s.dir, indexName))
	if err != nil || len(b) > maxIndexSize {
		return nil
	}
	recs, err := parseIndex(b)
	if err != nil {
		return nil
	}
	return recs
}

// parseIndex parses an index, whose records must be sorted by name with no
// name twice. The records alias b. A slice rather than a map: the lookup
// walks it alongside the sorted directory listing, and 10,000 entries in a
// map cost a millisecond and 2 MB more on every event.
func parseIndex(b []byte) ([]indexRecord, error) {
	errCorrupt := errors.New("corrupt index")
	if len(b) < len(indexMagic)+4 || string(b[:len(indexMagic)]) != indexMagic {
		return nil, errCorrupt
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32.ChecksumIEEE(body) != sum {
		return nil, errCorrupt
	}
	p := body[len(indexMagic):]
	uvarint := func() uint64 {
		v, n := binary.Uvarint(p)
		if n <= 0 {
			p = nil
			return 0
		}
		p = p[n:]
		return v
	}
	bytesOf := func() []byte {
		n := uvarint()
		if n > uint64(len(p)) {
			p = nil
			return nil
		}
		v := p[:n:n]
		p = p[n:]
		return v
	}
	count := uvarint()
	recs := make([]indexRecord, 0, min(count, uint64(len(p))))
	for range count {
		var r indexRecord
		r.name = bytesOf()
		r.key.ino = uvarint()
		r.key.size = int64(uvarint())
		r.key.mtime = int64(uvarint())
		r.key.ctime = int64(uvarint())
		r.data = bytesOf()
		if p == nil {
			return nil, errCorrupt
		}
		if n := len(recs); n > 0 && bytes.Compare(recs[n-1].name, r.name) >= 0 {
			return nil, errCorrupt
		}
		recs = append(recs, r)
	}
	if len(p) != 0 {
		return nil, errCorrupt
	}
	return recs, nil
}

// indexCursor finds names, in increasing order, among sorted records.
type indexCursor struct {
	recs []indexRecord
	i    int
}

// seek positions the cursor for name and any name after it.
func (c *indexCursor) seek(name string) {
	c.i = sort.Search(len(c.recs), func(i int) bool { return string(c.recs[i].name) >= name })
}

// find returns the entry for name, which must not sort before the previous
// name asked for, or nil.
func (c *indexCursor) find(name string) *indexEntry {
	for c.i < len(c.recs) && string(c.recs[c.i].name) < name {
		c.i++
	}
	if c.i < len(c.recs) && string(c.recs[c.i].name) == name {
		return &c.recs[c.i].indexEntry
	}
	return nil
}

// appendIndex appends the index of entries, given as parallel slices
// sorted by name, to b.
func appendIndex(b []byte, names []string, entries []indexEntry) []byte {
	start := len(b)
	b = append(b, indexMagic...)
	b = binary.AppendUvarint(b, uint64(len(names)))
	for i, name := range names {
		e := entries[i]
		b = binary.AppendUvarint(b, uint64(len(name)))
		b = append(b, name...)
		b = binary.AppendUvarint(b, e.key.ino)
		b = binary.AppendUvarint(b, uint64(e.key.size))
		b = binary.AppendUvarint(b, uint64(e.key.mtime))
		b = binary.AppendUvarint(b, uint64(e.key.ctime))
		b = binary.AppendUvarint(b, uint64(len(e.data)))
		b = append(b, e.data...)
	}
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b[start:]))
}

// writeIndex replaces the index's content in place. The caller holds the
// lock. Errors are the caller's to ignore: without an index List reads the
// node files.
func (s *Store) writeIndex(names []string, entries []indexEntry) error {
	// Sized once: grown by append, the 6 MB index of 10,000 nodes with
	// full tags cost twice that in copies.
	size := len(indexMagic) + 16
	for i, name := range names {
		size += len(name) + len(entries[i].data) + 4*binary.MaxVarintLen64
	}
	b := appendIndex(make([]byte, 0, size), names, entries)
	f, err := os.OpenFile(filepath.Join(s.dir, indexName), os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	// In place, not through a renamed temp file: ext4 flushes a file
	// renamed over another (auto_da_alloc), which would cost every run a
	// disk write it does not need. A reader racing the write sees a bad
	// checksum.
	_, err = f.WriteAt(b, 0)
	if err == nil {
		err = f.Truncate(int64(len(b)))
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// cacheable reports whether a file of this key, stat'ed at now, may enter
// the index.
func cacheable(k fileKey, now time.Time) bool {
	return k.ctime < now.Add(-racyMargin).UnixNano() && k.mtime < now.Add(-racyMargin).UnixNano()
}
