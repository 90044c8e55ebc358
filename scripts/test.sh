#!/usr/bin/env bash
# scripts/test.sh: every test of serf-hb, the way CI runs them.
#
# Installs the Debian packages the real-component tests need (serf,
# haproxy, s6) when they are missing, then runs go vet, a gofmt check, the
# whole test suite with the race detector, each fuzz target for a short
# bounded time, and the benchmarks in smoke mode.
#
#   scripts/test.sh            # as root, or with sudo available
#   FUZZTIME=2m scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for pair in serf:serf haproxy:haproxy s6-svscan:s6 /usr/bin/time:time nft:nftables ip:iproute2 git:git; do
	cmd=${pair%%:*} pkg=${pair#*:}
	command -v "$cmd" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	echo "test.sh: installing ${need[*]}" >&2
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

echo "== go vet" >&2
go vet ./...
echo "== gofmt" >&2
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change: $unformatted" >&2
	exit 1
fi

echo "== go test -race ./..." >&2
go test -race -count=1 -timeout 30m ./...

if [ -x scripts/fuzz.sh ]; then
	echo "== fuzz (${FUZZTIME:-20s} per target)" >&2
	FUZZTIME=${FUZZTIME:-20s} scripts/fuzz.sh
fi
if [ -x scripts/bench.sh ]; then
	echo "== benchmarks (smoke)" >&2
	scripts/bench.sh --smoke
fi
