#!/usr/bin/env bash
# scripts/test.sh: every test of serf-hb, the way CI runs them.
#
# Installs the Debian packages the real-component tests need (serf,
# haproxy, s6) when they are missing, builds upstream Serf v0.10.2 when it
# is missing, then runs go vet, a gofmt check, the whole test suite with
# the race detector, the end-to-end story and the sync tests a second time
# against upstream Serf, every suite that starts HAProxy a second time
# against HAProxy 3.0 (scripts/haproxy3.sh), each fuzz target for a short
# bounded time, and the benchmarks in smoke mode. Nothing is skipped: a missing tool fails the run.
#
#   scripts/test.sh            # as root, or with sudo available
#   FUZZTIME=2m scripts/test.sh
#   SERF_UPSTREAM_DIR=/opt/serf-0.10.2 scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS

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

# Upstream Serf, which many users run instead of Debian's 0.9.4. Its own
# directory, never on $PATH: the first test pass must drive Debian's serf.
# `serf version` cannot tell the two apart (both print 0.8.2-dev), the
# module version in the binary's build information can.
serf_version=v0.10.2
serf_dir=${SERF_UPSTREAM_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/serf-hb/serf-$serf_version}
upstream_serf=$serf_dir/serf
if ! go version -m "$upstream_serf" 2>/dev/null | grep -qE "^[[:space:]]+mod[[:space:]]+github.com/hashicorp/serf[[:space:]]+$serf_version[[:space:]]"; then
	echo "test.sh: building serf $serf_version into $serf_dir" >&2
	mkdir -p "$serf_dir"
	(cd "$serf_dir" && GOFLAGS=-mod=mod GOBIN=$serf_dir go install "github.com/hashicorp/serf/cmd/serf@$serf_version")
fi

echo "== go vet" >&2
go vet ./...
echo "== gofmt" >&2
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change: $unformatted" >&2
	exit 1
fi

# The rolling deploy (60 serf agents under load, asserting that no handler
# run reaches Serf's 1 s warning) runs on its own, after the rest: beside
# another package's suite on 2 cores its runs measure the neighbour.
echo "== go test -race ./... (serf: $(command -v serf), Debian's)" >&2
go test -race -count=1 -timeout 30m $(go list ./... | grep -v '/scripts/rolling$')
go test -race -count=1 -timeout 20m ./scripts/rolling

# The second pass must have run both tests, each against upstream Serf (the
# suites name their serf binary under -v): a -run pattern that matches
# nothing passes silently.
echo "== go test -race: the story and sync tests against serf $serf_version ($upstream_serf)" >&2
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! SERF_BIN=$upstream_serf go test -race -count=1 -timeout 30m -v \
	-run '^(TestStory|TestSyncAgainstRealAgents)$' ./scripts/e2e ./scripts/synctest >"$log" 2>&1; then
	cat "$log"
	exit 1
fi
grep -E '^(--- |ok |FAIL)' "$log"
for check in "^e2e: serf is $upstream_serf .*$serf_version" "^synctest: serf is $upstream_serf .*$serf_version" \
	'^--- PASS: TestStory ' '^--- PASS: TestSyncAgainstRealAgents '; do
	if ! grep -qE "$check" "$log"; then
		cat "$log"
		echo "test.sh: the upstream pass lacks a line matching $check" >&2
		exit 1
	fi
done

# HAProxy 3.0 LTS (Debian 13's 3.0.11, the branch most new installs run)
# beside Debian 12's 2.6.12: every suite that starts HAProxy runs again
# with HAPROXY_BIN pointing at it (scripts/haproxy3.sh downloads it once
# into a cache). Each package names its HAProxy under -v; the pass must show
# 3.0.11 for every one, and every named test must have passed (a -run
# pattern that matches nothing passes silently).
haproxy3=$(scripts/haproxy3.sh)
h3start=$SECONDS
echo "== go test -race: the HAProxy suites against $("$haproxy3" -v | sed -n 1p) ($haproxy3)" >&2
h3pkgs=(handler/haproxy handler/master scripts/live scripts/e2e scripts/labtest scripts/partition scripts/rolling)
h3log=$(mktemp)
trap 'rm -f "$log" "$h3log"' EXIT
h3together=("${h3pkgs[@]/#/./}")
h3together=("${h3together[@]/.\/scripts\/rolling/}") # alone, below
if ! HAPROXY_BIN=$haproxy3 go test -race -count=1 -timeout 30m -v ${h3together[@]} >"$h3log" 2>&1 ||
	! HAPROXY_BIN=$haproxy3 go test -race -count=1 -timeout 20m -v ./scripts/rolling >>"$h3log" 2>&1 ||
	! HAPROXY_BIN=$haproxy3 go test -race -count=1 -timeout 10m -v -run '^(FuzzHandle|FuzzRender)$' ./handler >>"$h3log" 2>&1; then
	cat "$h3log"
	exit 1
fi
grep -E '^(--- |ok |FAIL)' "$h3log"
checks=()
for pkg in "${h3pkgs[@]}" handler; do
	name=${pkg#scripts/}
	checks+=("^$name: haproxy is $haproxy3 \\(HAProxy version 3\\.0\\.11-" "^ok[[:space:]]+github.com/serf-hb/serf-hb/$pkg[[:space:]]")
done
for t in TestKeywordsAsMeasured TestApplyRemoveRetires TestApplyRejoinRevives TestRemoveRetires TestRejoinRevives TestStuckWorker TestRollingDeploy TestReloadAnswerReal TestReloadRealHAProxy TestReloadUnderS6 TestJoin TestAheadDisagrees TestFaults \
	TestVerifiedReloadFailure TestRemovalRace TestFastCheck TestManyChangesUnderLoad TestStory TestReloadUnderLoad TestLabImage TestPartition FuzzHandle FuzzRender; do
	checks+=("^--- PASS: $t ")
done
for check in "${checks[@]}"; do
	if ! grep -qE "$check" "$h3log"; then
		cat "$h3log"
		echo "test.sh: the HAProxy 3.0 pass lacks a line matching $check" >&2
		exit 1
	fi
done
echo "test.sh: the HAProxy 3.0 pass took $((SECONDS - h3start)) s" >&2

if [ -x scripts/fuzz.sh ]; then
	echo "== fuzz (${FUZZTIME:-20s} per target)" >&2
	FUZZTIME=${FUZZTIME:-20s} scripts/fuzz.sh
fi
if [ -x scripts/bench.sh ]; then
	echo "== benchmarks (smoke)" >&2
	scripts/bench.sh --smoke
fi
echo "test.sh: all passed in $((SECONDS - start)) s" >&2
