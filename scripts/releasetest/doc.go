// Package releasetest checks scripts/release.sh, the release build: that
// it produces static linux/amd64 and linux/arm64 binaries stamped with the
// version and the git revision, a SHA256SUMS file sha256sum accepts, and
// the same bytes when run again. It has tests only; see docs/release.md.
package releasetest
