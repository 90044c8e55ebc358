#!/usr/bin/env bash
# scripts/release.sh [VERSION]: the release build of serf-hb.
#
# Builds static (CGO_ENABLED=0) binaries for linux/amd64 and linux/arm64
# into dist/ (serf-hb-linux-ARCH), each with VERSION stamped into
# main.version (what `serf-hb --version` prints), the git revision in its
# build info (-buildvcs: `go version -m FILE` shows vcs.revision, and
# vcs.modified=true if the tree had uncommitted changes) and no local paths
# (-trimpath), then writes dist/SHA256SUMS (check with
# `cd dist && sha256sum -c SHA256SUMS`). The same tree built with the same
# Go version gives the same bytes, wherever it is checked out: nothing
# machine- or time-dependent goes into the binaries.
#
#   scripts/release.sh                # VERSION: git describe --tags --always --dirty
#   scripts/release.sh v1.2.0
#   DIST=/tmp/out ARCHS=amd64 scripts/release.sh v1.2.0
#
# DIST is the output directory (default dist, under the repository root);
# ARCHS the architectures (default "amd64 arm64"). It needs a git checkout.
# See docs/release.md.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! top=$(git rev-parse --show-toplevel 2>/dev/null); then
	echo "release.sh: $(pwd) is not a git checkout; hint: a release is built from a clone of the repository, so that its revision is stamped" >&2
	exit 1
fi
version=${1:-$(git describe --tags --always --dirty)}
# The version ends up inside -ldflags, which the go command splits on
# spaces: allow what tags and git describe produce, nothing else.
case $version in
'' | *[!A-Za-z0-9._+-]*)
	echo "release.sh: version \"$version\": only letters, digits and ._+- are allowed" >&2
	exit 2
	;;
esac
dist=${DIST:-dist}
archs=${ARCHS:-amd64 arm64}
mkdir -p "$dist"
dist=$(cd "$dist" && pwd)

# The build runs in a temporary clone of HEAD holding exactly the working
# tree's files (tracked and untracked, minus ignored ones like dist/), not
# in place: go build finds the repository by a .git *directory*, so in a
# linked worktree (.git is a file) it stamps no revision, or the revision
# of whatever checkout encloses it (golang/go#58218). The clone's git
# status equals the working tree's, so vcs.modified tells the truth.
src=$(mktemp -d "${TMPDIR:-/tmp}/serf-hb-release.XXXXXX")
trap 'rm -rf "$src"' EXIT
git clone -q --shared --no-checkout "$top" "$src"
git -C "$src" reset -q "$(git rev-parse HEAD)"
git ls-files -z --cached --others --exclude-standard --deduplicate |
	while IFS= read -r -d '' f; do
		if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\0' "$f"; fi # skip deleted files
	done |
	tar --null -T - -cf - | tar -xf - -C "$src"

rm -f "$dist"/serf-hb-linux-* "$dist"/SHA256SUMS
echo "release.sh: serf-hb $version, $(go version)" >&2
files=()
for arch in $archs; do
	out=serf-hb-linux-$arch
	# GOAMD64/GOARM64 pinned to the baseline so that a builder's environment
	# cannot change the instructions (or the bytes) of a release.
	(cd "$src" && CGO_ENABLED=0 GOOS=linux GOARCH=$arch GOAMD64=v1 GOARM64=v8.0 \
		go build -trimpath -buildvcs=true \
		-ldflags "-s -w -X main.version=$version" \
		-o "$dist/$out" .)
	files+=("$out")
	echo "release.sh: $dist/$out" >&2
done
(cd "$dist" && sha256sum "${files[@]}" >SHA256SUMS)
echo "release.sh: $dist/SHA256SUMS" >&2
